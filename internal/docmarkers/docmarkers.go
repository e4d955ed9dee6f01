// Package docmarkers keeps generated tables in the docs: it replaces what
// stands between two HTML-comment markers of a markdown page, so a table
// made from code (the settings, the answers) cannot drift from it.
package docmarkers

import (
	"errors"
	"os"
	"strings"
)

// Replace puts content between begin and end in doc.
func Replace(doc, begin, end, content string) (string, error) {
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		return "", errors.New("the markers " + begin + " and " + end + " are missing or out of order")
	}
	return doc[:i+len(begin)] + "\n" + content + doc[j:], nil
}

// Rewrite applies update to the file at path, and writes it only if that
// changed it.
func Rewrite(path string, update func(doc string) (string, error)) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc, err := update(string(old))
	if err != nil {
		return errors.New(path + ": " + err.Error())
	}
	if doc == string(old) {
		return nil
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
