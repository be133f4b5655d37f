// Package files is what Kelpie does with the files uploaded to folders:
// which types it takes (Letta's list), how it turns their bytes into text
// (plain text as is, HTML without its markup, PDF through a PDF text
// extractor), how it cuts text into passages to embed and into numbered
// lines for an agent to read, and the open-files window of an agent (how
// many files it keeps open, how many characters of each it sees, which file
// is closed first).
//
// Guarantees: every function is a pure function of its inputs, or runs in
// the caller's transaction; none calls a model. Extraction never panics on
// hostile bytes (a malformed PDF is an error) and never yields more than
// MaxTextBytes; every limit is a named constant.
package files
