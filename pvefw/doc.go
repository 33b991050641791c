// Package pvefw reads Proxmox VE firewall files (<vmid>.fw, cluster.fw,
// host.fw) the way pve-firewall reads them, and reports every line it
// would skip, keep without compiling, or read differently from how the
// line looks.
//
// pve-firewall never rejects a file. It warns and skips a line, or keeps a
// broken rule without compiling it, and the firewall quietly ends up more
// open than the file suggests. The nftables backend (proxmox-firewall) is
// stricter and refuses the whole file on some lines pve-firewall accepts.
// Check accepts only what both read the same way.
//
// Severities follow one rule:
//
//   - Error: pve-firewall skips the line or warns about it; or the line
//     compiles to nothing that can match (an empty IP set, a NIC that
//     cannot exist, a macro for the other IP version); or other lines are
//     lost because of it (a section header with a comment after it,
//     "[RULES] # x", is an ordinary line, so the rules below it are
//     skipped); or the nftables backend refuses the whole file because of
//     it (a repeated rule option or [OPTIONS] key, a lowercase "group").
//     A '#' glued to a value ("-dest 10.0.0.0/8#lan -p tcp") is an Error
//     when the comment it starts swallows options that decide the match
//     (all but -log), because the rule that compiles then matches other
//     traffic than the one written.
//   - Warning: pve-firewall reads the line, but not as it looks ("-dport
//     0" and the other zero values mean "any", a glued '#' that hides no
//     option, "policy_out: drop"), or in a form that depends on the node
//     (port names from /etc/services, --opt spellings older releases skip),
//     or the file leaves a setting at a default that opens it (policy_out
//     unset is ACCEPT, enable unset is off), or the order check finds a
//     broad ACCEPT before a DROP or REJECT it overlaps.
//
// Findings are merged so that each line has at most one, in the form
// FILE:LINE: error|warning: message.
//
// A VM file can use the aliases, IP sets and security groups of
// cluster.fw. Without a Config.Cluster, names written with dc/ (and GROUP
// rules) are not checked, while an unscoped name must be defined in the
// file itself, above the rules that use it.
package pvefw
