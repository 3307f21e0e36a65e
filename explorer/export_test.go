package explorer

// Cell is exported for tests.
var Cell = cell

// Channel classifies a referring domain with app domains.
func Channel(appDomains []string, domain string) string {
	s := &Server{cfg: Config{AppDomains: appDomains}}
	return s.channel(domain)
}
