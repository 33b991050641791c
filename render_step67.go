package main

import (
	"openclaw-harden/assets"
	"openclaw-harden/steps"
)

// Steps 6 and 7: `render compose` prints the generated compose.yaml, `render openclaw-config` the hardened
// openclaw.json (the profile's shape merged into an empty config); `check compose` loads an operator's compose
// file as Docker Compose does and reports each violation with its service and key.
func init() {
	artifacts["compose"] = func(a steps.Answers) ([]byte, error) {
		s, err := steps.RenderCompose(a)
		return []byte(s), err
	}
	artifacts["openclaw-config"] = func(steps.Answers) ([]byte, error) {
		res, err := steps.PatchOpenClawConfig(nil, assets.OpenClawHardenedPatch())
		return res.Out, err
	}
	checkers["compose"] = func(name string, data []byte) ([]string, bool) {
		fs := steps.CheckCompose(name, data, nil)
		return steps.FormatComposeFindings(name, fs), len(fs) > 0
	}
}
