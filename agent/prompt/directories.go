package prompt

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Directory is a folder attached to an agent as its prompt shows it: its
// files, open (with the part the agent sees) or closed.
type Directory struct {
	Name         string
	Description  string
	Instructions string
	Files        []FileView
}

// FileView is a file of a Directory: Value is what the agent sees of it,
// "" when closed.
type FileView struct {
	Name  string // "<folder>/<file>"
	Value string
	Limit int // the agent's per-file window, in characters
}

// Directories is the <directories> section: the folders attached to an
// agent, with how many files it has open out of MaxOpen.
type Directories struct {
	MaxOpen int
	Folders []Directory
}

// renderDirectories renders d after the memory blocks as Letta does (its
// react agents' variant wraps each file in its name's tag).
func renderDirectories(b *strings.Builder, d *Directories, react bool) {
	if d == nil || len(d.Folders) == 0 {
		return
	}
	open := 0
	for _, f := range d.Folders {
		for _, v := range f.Files {
			if v.Value != "" {
				open++
			}
		}
	}
	fmt.Fprintf(b, "\n\n<directories>\n<file_limits>\n- current_files_open=%d\n- max_files_open=%d\n</file_limits>\n", open, d.MaxOpen)
	for _, f := range d.Folders {
		fmt.Fprintf(b, "<directory name=\"%s\">\n", f.Name)
		if f.Description != "" {
			fmt.Fprintf(b, "<description>%s</description>\n", f.Description)
		}
		if f.Instructions != "" {
			fmt.Fprintf(b, "<instructions>%s</instructions>\n", f.Instructions)
		}
		for _, v := range f.Files {
			renderFile(b, v, react)
		}
		b.WriteString("</directory>\n")
	}
	b.WriteString("</directories>")
}

func renderFile(b *strings.Builder, v FileView, react bool) {
	status := "closed"
	if v.Value != "" {
		status = "open"
	}
	meta := fmt.Sprintf("<metadata>\n- read_only=true\n- chars_current=%d\n- chars_limit=%d\n</metadata>\n", utf8.RuneCountInString(v.Value), v.Limit)
	if react {
		fmt.Fprintf(b, "<file status=\"%s\">\n<%s>\n<description>\n\n</description>\n%s<value>\n%s\n</value>\n</%s>\n</file>\n", status, v.Name, meta, v.Value, v.Name)
		return
	}
	fmt.Fprintf(b, "<file status=\"%s\" name=\"%s\">\n%s", status, v.Name, meta)
	if v.Value != "" {
		fmt.Fprintf(b, "<value>\n%s\n</value>\n", v.Value)
	}
	b.WriteString("</file>\n")
}
