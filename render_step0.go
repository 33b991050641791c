package main

import (
	"openclaw-harden/assets"
	"openclaw-harden/steps"
)

func init() {
	artifacts["sshd-dropin"] = func(steps.Answers) ([]byte, error) { return []byte(assets.SSHDDropin()), nil }
}
