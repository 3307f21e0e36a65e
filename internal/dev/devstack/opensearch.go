package devstack

// openSearchDist is OpenSearch's integ-test zip: core modules only (no
// security plugin, no ISM), plain HTTP, no authentication.
//
// Java: OpenSearch 2.19 requires 11 or later, and fails on 24 and later:
// its jvm.options enable the Security Manager
// (-Djava.security.manager=allow), which JDK 24 removed ("Enabling a
// Security Manager is not supported").
var openSearchDist = searchDist{
	service:   OpenSearch,
	product:   "OpenSearch",
	version:   OpenSearchVersion,
	path:      openSearchPath,
	sha512:    openSearchSHA512,
	envPrefix: "OPENSEARCH",
	minJava:   11,
	maxJava:   23,
}
