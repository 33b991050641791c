package main

import (
	"net/netip"

	"openclaw-harden/steps"
)

// Steps 4 and 5: `render after-rules` prints the DOCKER-USER marker block (what goes after the last COMMIT of
// /etc/ufw/after.rules), `render daemon-json` the profile's daemon.json keys merged into an empty file for the
// newest Docker this tool knows; `check after-rules` and `check daemon-json` read files an operator has.
func init() {
	artifacts["after-rules"] = func(a steps.Answers) ([]byte, error) {
		b, err := steps.RenderDockerUserBlock(a)
		return []byte(b + "\n"), err
	}
	artifacts["daemon-json"] = func(steps.Answers) ([]byte, error) {
		out, _, err := steps.MergeDaemonJSON(nil, steps.NewestEngine)
		return out, err
	}
	checkers["after-rules"] = func(name string, data []byte) ([]string, bool) {
		fs := steps.CheckAfterRules(string(data), netip.Prefix{})
		return steps.FormatFindings(name, fs), len(fs) > 0
	}
	checkers["daemon-json"] = func(name string, data []byte) ([]string, bool) {
		fs := steps.CheckDaemonJSON(data)
		return steps.FormatFindings(name, fs), len(fs) > 0
	}
}
