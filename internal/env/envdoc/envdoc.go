// Package envdoc reads the settings tables of docs/runtime-settings.md, for the tests that
// keep each binary's environment variables and their documentation in step. Only tests
// import it.
package envdoc

import (
	"regexp"
	"strings"
)

// Variables returns the names that name matches in the first column of every table row of
// doc starting with rowPrefix, each mapped to whether one of its rows stands under a heading
// for which section returns true (the heading line as written, "#"s included).
func Variables(doc string, section func(heading string) bool, name *regexp.Regexp, rowPrefix string) map[string]bool {
	out := map[string]bool{}
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "#") {
			in = section(line)
			continue
		}
		if cells := strings.Split(line, "|"); len(cells) > 2 && strings.HasPrefix(line, rowPrefix) {
			for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
				out[m[1]] = out[m[1]] || in
			}
		}
	}
	return out
}

// In returns the names of vars that stand in a matching section.
func In(vars map[string]bool) map[string]bool {
	out := map[string]bool{}
	for n, in := range vars {
		if in {
			out[n] = true
		}
	}
	return out
}
