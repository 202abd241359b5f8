package whois

import (
	"bufio"
	"net/netip"
	"strings"
)

// whoisField is where a port-43 label's value goes in a Summary.
type whoisField int

const (
	fName whoisField = iota
	fHandle
	fRange
	fType
	fCountry
	fRegistrar
	fHolder
	fStatus
	fNameServer
	fRegistered
	fExpires
	fChanged
)

// whoisLabels are the labels registries and registrars commonly use on
// port 43 (gTLD registries per ICANN's format, the RIRs' RPSL, ARIN's),
// lower-cased.
var whoisLabels = map[string]whoisField{
	"domain name": fName, "netname": fName, "as-name": fName, "asname": fName,
	"registry domain id": fHandle, "nethandle": fHandle, "aut-num": fHandle, "autnum": fHandle,
	"inetnum": fRange, "inet6num": fRange, "netrange": fRange,
	"nettype":                 fType,
	"country":                 fCountry,
	"registrar":               fRegistrar,
	"registrant organization": fHolder, "org-name": fHolder, "orgname": fHolder,
	"domain status": fStatus,
	"name server":   fNameServer, "nserver": fNameServer,
	"creation date": fRegistered, "created": fRegistered, "regdate": fRegistered,
	"registry expiry date": fExpires, "registrar registration expiration date": fExpires, "expiration date": fExpires, "paid-till": fExpires,
	"updated date": fChanged, "last-modified": fChanged, "updated": fChanged,
}

// summarizeWhois picks the key fields out of port-43 answers. IANA's
// answer (the first) is left out, as it speaks of the top-level domain
// or the registry rather than of the question; a registrar's answer,
// the last and most detailed, is read before the registry's. Nil when
// nothing was found.
func summarizeWhois(query string, answers []Answer) *Summary {
	if len(answers) < 2 {
		return nil
	}
	s := &Summary{Protocol: "whois", Kind: "domain", Server: answers[len(answers)-1].Server}
	if _, err := netip.ParseAddr(query); err == nil {
		s.Kind = "ip network"
	} else if strings.HasPrefix(query, "AS") {
		s.Kind = "autnum"
	}
	found := false
	var dates [3]string
	for i := len(answers) - 1; i >= 1; i-- {
		var status, ns []string
		sc := bufio.NewScanner(strings.NewReader(answers[i].Text))
		for sc.Scan() {
			key, val, ok := strings.Cut(sc.Text(), ":")
			f, known := whoisLabels[strings.ToLower(strings.TrimSpace(key))]
			val = strings.TrimSpace(val)
			if !ok || !known || val == "" {
				continue
			}
			found = true
			switch f {
			case fStatus:
				status = append(status, strings.Fields(val)[0]) // leave out the ICANN link after it
			case fNameServer:
				ns = append(ns, strings.ToLower(strings.TrimSuffix(strings.Fields(val)[0], ".")))
			case fRegistered, fExpires, fChanged:
				setFirst(&dates[f-fRegistered], val)
			default:
				setFirst(s.field(f), val)
			}
		}
		if s.Status == nil {
			s.Status = status
		}
		if s.NameServers == nil {
			s.NameServers = ns
		}
	}
	if !found {
		return nil
	}
	for i, action := range []string{"registration", "expiration", "last changed"} {
		if dates[i] != "" {
			s.Events = append(s.Events, Event{Action: action, Date: dates[i]})
		}
	}
	return s
}

func (s *Summary) field(f whoisField) *string {
	switch f {
	case fName:
		return &s.Name
	case fHandle:
		return &s.Handle
	case fRange:
		return &s.Range
	case fType:
		return &s.Type
	case fCountry:
		return &s.Country
	case fRegistrar:
		return &s.Registrar
	}
	return &s.Holder
}

func setFirst(dst *string, v string) {
	if *dst == "" {
		*dst = v
	}
}
