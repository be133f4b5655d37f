package sim

// Known defects: bugs of the system under test that the checkers find and
// that are not fixed yet. A finding of a known defect is counted in
// Result.Known, by the defect's name, instead of being reported as a
// violation, so that sweeps and CI pass while the bug is open and still
// fail on anything else; each exemption is as narrow as the checker can
// make it. TestKnownDefects fails once a defect is no longer seen, so that
// its exemption goes with its fix.

// shortMessagePages: an agent's message listing counts toward its limit
// the stored messages that show no part at all (an assistant message with
// no text, no reasoning and no tool call, which the agent stores when the
// model answers with nothing), so a page comes back short of its limit, or
// empty, while later messages exist. A client paging by limit stops there;
// after an empty page it has no cursor to go on with. Exempt: a message
// page that is exactly the next messages of the whole listing but short,
// of an agent the scripted model answered with nothing.
const shortMessagePages = "short_message_pages"

// noteKnown counts one finding of a known defect.
func (c *checker) noteKnown(name string) {
	c.known[name]++
}
