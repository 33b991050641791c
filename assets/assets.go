// Package assets holds the embedded templates and each step's explanation text.
package assets

import (
	"embed"
	"fmt"
	"strings"
)

//go:embed explain/*.md
var explain embed.FS

// Explanation is why step id exists, in words a new admin can follow; "" when there is none.
func Explanation(id int) string {
	b, err := explain.ReadFile(fmt.Sprintf("explain/step%d.md", id))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
