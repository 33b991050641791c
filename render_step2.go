package main

import "openclaw-harden/steps"

func init() { artifacts["ufw-script"] = steps.UFWScript }
