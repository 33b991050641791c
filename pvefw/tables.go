package pvefw

import (
	"strings"
)

// Tables pve-firewall checks names against. The /etc files are read on the
// Proxmox node, which this package never sees: these copies are Debian's, the
// base of every Proxmox VE release.

var logLevels = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "nolog"}

// protocolsWithPorts are the only -p values pve-firewall lets carry -dport/-sport.
var protocolsWithPorts = map[string]bool{
	"udp": true, "17": true, "udplite": true, "136": true, "tcp": true, "6": true,
	"dccp": true, "33": true, "sctp": true, "132": true,
}

// icmpTypes are the names iptables -p icmp -h lists; pve-firewall accepts
// nothing else, not even numbers, in -icmp-type for icmp.
var icmpTypes = setOf(`any echo-reply destination-unreachable network-unreachable host-unreachable
	protocol-unreachable port-unreachable fragmentation-needed source-route-failed network-unknown
	host-unknown network-prohibited host-prohibited TOS-network-unreachable TOS-host-unreachable
	communication-prohibited host-precedence-violation precedence-cutoff source-quench redirect
	network-redirect host-redirect TOS-network-redirect TOS-host-redirect echo-request
	router-advertisement router-solicitation time-exceeded ttl-zero-during-transit
	ttl-zero-during-reassembly parameter-problem ip-header-bad required-option-missing
	timestamp-request timestamp-reply address-mask-request address-mask-reply`)

// icmpv6Types are the names ip6tables -p icmpv6 -h lists.
var icmpv6Types = setOf(`destination-unreachable no-route communication-prohibited beyond-scope
	address-unreachable port-unreachable failed-policy reject-route packet-too-big time-exceeded
	ttl-zero-during-transit ttl-zero-during-reassembly parameter-problem bad-header
	unknown-header-type unknown-option echo-request echo-reply router-solicitation
	router-advertisement neighbor-solicitation neighbour-solicitation neighbor-advertisement
	neighbour-advertisement redirect`)

// macroRule is one rule a macro expands to; an empty field takes the value
// of the rule using the macro.
type macroRule struct{ proto, dport, sport string }

// macro is one of pve-firewall's built-in macros. v6 replaces rules for
// IPv6 rules; family restricts the macro to one IP version.
type macro struct {
	name   string
	rules  []macroRule
	v6     []macroRule
	family int
}

// macroSpec lists pve-firewall's macros as "Name: proto/dport[/sport] ...".
const macroSpec = `
Amanda: udp/10080 tcp/10080
Auth: tcp/113
BGP: tcp/179
BitTorrent: tcp/6881:6889 udp/6881
BitTorrent32: tcp/6881:6999 udp/6881
Ceph: tcp/6789 tcp/3300 tcp/6800:7300
CVS: tcp/2401
Citrix: tcp/1494 udp/1604 tcp/2598
DAAP: tcp/3689 udp/3689
DCC: tcp/6277
DHCPfwd: udp/67:68/67:68
DNS: udp/53 tcp/53
Distcc: tcp/3632
FTP: tcp/21
Finger: tcp/79
GNUnet: tcp/2086 udp/2086 tcp/1080 udp/1080
GRE: 47
Git: tcp/9418
HKP: tcp/11371
HTTP: tcp/80
HTTPS: tcp/443
ICPV2: udp/3130
ICQ: tcp/5190
IMAP: tcp/143
IMAPS: tcp/993
IPIP: 94
IPsec: udp/500/500 50
IPsecah: udp/500/500 51
IPsecnat: udp/500 udp/4500 50
IRC: tcp/6667
Jetdirect: tcp/9100
L2TP: udp/1701
LDAP: tcp/389
LDAPS: tcp/636
MSNP: tcp/1863
MSSQL: tcp/1433
Mail: tcp/25 tcp/465 tcp/587
MDNS: udp/5353
Munin: tcp/4949
MySQL: tcp/3306
NNTP: tcp/119
NNTPS: tcp/563
NTP: udp/123
OSPF: 89
OpenVPN: udp/1194
PCA: udp/5632 tcp/5631
PMG: tcp/8006
POP3: tcp/110
POP3S: tcp/995
PPtP: 47 tcp/1723
Ping: icmp/echo-request | icmpv6/echo-request
PostgreSQL: tcp/5432
Printer: tcp/515
RDP: tcp/3389
RIP: udp/520
RNDC: tcp/953
Razor: tcp/2703
Rdate: tcp/37
Rsync: tcp/873
SANE: tcp/6566
SMB: udp/135,445 udp/137:139 udp/1024:65535/137 tcp/135,139,445
SMBswat: tcp/901
SMTP: tcp/25
SMTPS: tcp/465
SNMP: udp/161:162 tcp/161
SPAMD: tcp/783
SSH: tcp/22
SVN: tcp/3690
SixXS: tcp/3874 udp/3740 41 udp/5072,8374
SPICEproxy: tcp/3128
Squid: tcp/3128
Submission: tcp/587
Syslog: udp/514 tcp/514
TFTP: udp/69
Telnet: tcp/23
Telnets: tcp/992
Time: tcp/37
Trcrt: udp/33434:33524 icmp/echo-request | udp/33434:33524 icmpv6/echo-request
VNC: tcp/5900:5999
VNCL: tcp/5500
Web: tcp/80 tcp/443
Webcache: tcp/8080
Webmin: tcp/10000
Whois: tcp/43
NeighborDiscovery: v6 | icmpv6/router-solicitation icmpv6/router-advertisement icmpv6/neighbor-solicitation icmpv6/neighbor-advertisement
DHCPv6: v6 | udp/546:547/546:547
`

// macros is keyed by the lowercased name: pve-firewall looks macros up
// case-insensitively.
var macros = parseMacros(macroSpec)

func parseMacros(spec string) map[string]*macro {
	parseRules := func(s string) []macroRule {
		var rs []macroRule
		for _, f := range strings.Fields(s) {
			parts := strings.Split(f, "/")
			for len(parts) < 3 {
				parts = append(parts, "")
			}
			rs = append(rs, macroRule{parts[0], parts[1], parts[2]})
		}
		return rs
	}
	m := map[string]*macro{}
	for _, line := range strings.Split(strings.TrimSpace(spec), "\n") {
		name, body, _ := strings.Cut(line, ":")
		mc := &macro{name: name}
		v4, v6, hasV6 := strings.Cut(body, "|")
		switch {
		case strings.TrimSpace(v4) == "v6":
			mc.family = 6
			mc.rules = parseRules(v6)
		case hasV6:
			mc.rules = parseRules(v4)
			mc.v6 = parseRules(v6)
		default:
			mc.rules = parseRules(v4)
		}
		m[strings.ToLower(name)] = mc
	}
	return m
}

// etcProtocols is Debian's /etc/protocols (netbase 6.4), name=number.
// pve-firewall accepts a protocol by its first-column name or by a number
// listed there, and nothing else.
const etcProtocols = `
	ip=0 hopopt=0 icmp=1 igmp=2 ggp=3 ipencap=4 st=5 tcp=6 egp=8 igp=9 pup=12 udp=17 hmp=20 xns-idp=22
	rdp=27 iso-tp4=29 dccp=33 xtp=36 ddp=37 idpr-cmtp=38 ipv6=41 ipv6-route=43 ipv6-frag=44 idrp=45
	rsvp=46 gre=47 esp=50 ah=51 skip=57 ipv6-icmp=58 ipv6-nonxt=59 ipv6-opts=60 rspf=73 vmtp=81
	eigrp=88 ospf=89 ax.25=93 ipip=94 etherip=97 encap=98 pim=103 ipcomp=108 vrrp=112 l2tp=115 isis=124
	sctp=132 fc=133 mobility-header=135 udplite=136 mpls-in-ip=137 manet=138 hip=139 shim6=140 wesp=141
	rohc=142 ethernet=143 mptcp=262
`

// etcServices is the first name of each tcp/udp/sctp port in Debian's
// /etc/services (netbase 6.4), name=port. Both backends resolve port names
// through the node's copy of that file.
const etcServices = `
	tcpmux=1 echo=7 discard=9 systat=11 daytime=13 netstat=15 qotd=17 chargen=19 ftp-data=20 ftp=21
	fsp=21 ssh=22 telnet=23 smtp=25 time=37 whois=43 tacacs=49 domain=53 bootps=67 bootpc=68 tftp=69
	gopher=70 finger=79 http=80 kerberos=88 iso-tsap=102 acr-nema=104 pop3=110 sunrpc=111 auth=113
	nntp=119 ntp=123 epmap=135 netbios-ns=137 netbios-dgm=138 netbios-ssn=139 imap2=143 snmp=161
	snmp-trap=162 cmip-man=163 cmip-agent=164 mailq=174 xdmcp=177 bgp=179 smux=199 qmtp=209 z3950=210
	ipx=213 ptp-event=319 ptp-general=320 pawserv=345 zserv=346 rpc2portmap=369 codaauth2=370
	clearcase=371 ldap=389 svrloc=427 https=443 snpp=444 microsoft-ds=445 kpasswd=464 submissions=465
	saft=487 isakmp=500 rtsp=554 nqs=607 asf-rmcp=623 qmqp=628 ipp=631 ldp=646 exec=512 biff=512
	login=513 who=513 shell=514 syslog=514 printer=515 talk=517 ntalk=518 route=520 gdomap=538 uucp=540
	klogin=543 kshell=544 dhcpv6-client=546 dhcpv6-server=547 afpovertcp=548 nntps=563 submission=587
	ldaps=636 tinc=655 silc=706 kerberos-adm=749 domain-s=853 rsync=873 ftps-data=989 ftps=990
	telnets=992 imaps=993 pop3s=995 socks=1080 proofd=1093 rootd=1094 openvpn=1194 rmiregistry=1099
	lotusnote=1352 ms-sql-s=1433 ms-sql-m=1434 ingreslock=1524 datametrics=1645 sa-msg-port=1646
	kermit=1649 groupwise=1677 l2f=1701 radius=1812 radius-acct=1813 cisco-sccp=2000 nfs=2049
	gnunet=2086 rtcm-sc104=2101 gsigatekeeper=2119 gris=2135 cvspserver=2401 venus=2430 venus-se=2431
	codasrv=2432 codasrv-se=2433 mon=2583 dict=2628 f5-globalsite=2792 gsiftp=2811 gpsd=2947
	gds-db=3050 icpv2=3130 isns=3205 iscsi-target=3260 mysql=3306 ms-wbt-server=3389 nut=3493
	distcc=3632 daap=3689 svn=3690 suucp=4031 sysrqd=4094 sieve=4190 epmd=4369 remctl=4373
	f5-iquery=4353 ntske=4460 ipsec-nat-t=4500 iax=4569 mtn=4691 radmin-port=4899 sip=5060
	sip-tls=5061 xmpp-client=5222 xmpp-server=5269 cfengine=5308 mdns=5353 postgresql=5432
	freeciv=5556 amqps=5671 amqp=5672 x11=6000 x11-1=6001 x11-2=6002 x11-3=6003 x11-4=6004 x11-5=6005
	x11-6=6006 x11-7=6007 gnutella-svc=6346 gnutella-rtr=6347 redis=6379 sge-qmaster=6444
	sge-execd=6445 mysql-proxy=6446 babel=6696 ircs-u=6697 bbs=7000 afs3-fileserver=7000
	afs3-callback=7001 afs3-prserver=7002 afs3-vlserver=7003 afs3-kaserver=7004 afs3-volser=7005
	afs3-bos=7007 afs3-update=7008 afs3-rmtsys=7009 font-service=7100 http-alt=8080 puppet=8140
	bacula-dir=9101 bacula-fd=9102 bacula-sd=9103 xmms2=9667 nbd=10809 zabbix-agent=10050
	zabbix-trapper=10051 amanda=10080 dicom=11112 hkp=11371 db-lsp=17500 dcap=22125 gsidcap=22128
	wnn6=22273 kerberos4=750 kerberos-master=751 passwd-server=752 krb-prop=754 zephyr-srv=2102
	zephyr-clt=2103 zephyr-hm=2104 iprop=2121 supfilesrv=871 supfiledbg=1127 poppassd=106
	moira-db=775 moira-update=777 moira-ureg=779 spamd=783 skkserv=1178 predict=1210 rmtcfg=1236
	xtel=1313 xtelw=1314 zebrasrv=2600 zebra=2601 ripd=2602 ripngd=2603 ospfd=2604 bgpd=2605
	ospf6d=2606 ospfapi=2607 isisd=2608 fax=4557 hylafax=4559 munin=4949 rplay=5555 nrpe=5666
	nsca=5667 canna=5680 syslog-tls=6514 sane-port=6566 ircd=6667 zope-ftp=8021 tproxy=8081
	omniorb=8088 clc-build-daemon=8990 xinetd=9098 git=9418 zope=9673 webmin=10000 kamanda=10081
	amandaidx=10082 amidxtape=10083 sgi-cmsd=17001 sgi-crsd=17002 sgi-gcd=17003 sgi-cad=17004
	binkp=24554 asp=27374 csync2=30865 dircproxy=57000 tfido=60177 fido=60179
`

// etcEthertypes is what layer2_protocols may name: the entries of Debian's
// /etc/ethertypes whose number has no hex letter, by name or number.
// pve-firewall reads that file with /^(\S+)\s+(\d+)/, so "IPv6 86DD" and
// the other hex-numbered entries are unknown to it.
var etcEthertypes = setOf(`IPv4 X25 ARP FR_ARP TEB RAW_FR RARP 802_1Q IPX NetBEUI MPLS MPLS_MULTI
	PPP_DISC PPP_SES ATMFATE FCOE FIP ROCE
	0800 0805 0806 0808 6558 6559 8035 8100 8137 8191 8847 8848 8863 8864 8884 8906 8914 8915`)

var (
	protoByName, protoByNumber = parsePairs(etcProtocols)
	serviceByName, _           = parsePairs(etcServices)
)

// conntrackHelpers are the conntrack helpers host.fw's nf_conntrack_helpers accepts.
var conntrackHelpers = setOf(`amanda ftp irc netbios-ns pptp sane sip snmp tftp`)

func parsePairs(s string) (byName map[string]string, byValue map[string]string) {
	byName, byValue = map[string]string{}, map[string]string{}
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		byName[k] = v
		byValue[v] = k
	}
	return byName, byValue
}

func setOf(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Fields(s) {
		m[f] = true
	}
	return m
}
