package explorer

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// User is one entry of the users file: a person or team who may open the
// explorer. A customer user sees only its tenant's data; an admin sees
// every tenant and may choose one.
type User struct {
	Name string `yaml:"name"`
	// TokenSHA256 is the hex SHA-256 of the user's token; the file never
	// needs to hold the token itself (`leasehold explore token` makes both).
	TokenSHA256 string `yaml:"token_sha256"`
	// Tenant is the customer whose data the user sees. Required unless Admin.
	Tenant string `yaml:"tenant"`
	Admin  bool   `yaml:"admin"`
}

// Principal is who is asking, as the server established it.
type Principal struct {
	Name   string `json:"name"`
	Tenant string `json:"tenant,omitempty"`
	Admin  bool   `json:"admin"`
}

// Users is the access list, by name, with token hashes decoded.
type Users struct {
	byName map[string]User
	hashes map[string][]byte
}

// LoadUsers reads a users file:
//
//	users:
//	  - {name: admin, token_sha256: 9f86d0…, admin: true}
//	  - {name: acme-marketing, token_sha256: 60303a…, tenant: acme-000}
//
// Every mistake (a missing tenant, a hash that is not 64 hex digits, a
// name twice, an unknown key) is an error naming the entry.
func LoadUsers(path string) (*Users, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Users []User `yaml:"users"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return NewUsers(doc.Users)
}

// NewUsers validates a list of users.
func NewUsers(list []User) (*Users, error) {
	u := &Users{byName: map[string]User{}, hashes: map[string][]byte{}}
	var errs []error
	for i, x := range list {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("users[%d] (%s): %s", i, x.Name, fmt.Sprintf(format, args...)))
		}
		h, err := hex.DecodeString(x.TokenSHA256)
		switch {
		case x.Name == "":
			bad("name is empty")
		case u.byName[x.Name].Name != "":
			bad("name appears twice")
		case err != nil || len(h) != sha256.Size:
			bad("token_sha256 must be 64 hex digits (the SHA-256 of the token)")
		case !x.Admin && x.Tenant == "":
			bad("tenant is empty; give the customer id this user may see, or admin: true")
		case x.Tenant != "" && !idRE.MatchString(x.Tenant):
			bad("tenant %q is not a customer id", x.Tenant)
		}
		u.byName[x.Name] = x
		u.hashes[x.Name] = h
	}
	if len(list) == 0 {
		errs = append(errs, errors.New("users: the list is empty; nobody could sign in"))
	}
	return u, errors.Join(errs...)
}

// HashToken returns the hex SHA-256 of a token, as the users file holds it.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewToken returns a random token (128 bits, URL-safe).
func NewToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// byToken finds the user a token belongs to, comparing every hash in
// constant time.
func (u *Users) byToken(token string) (User, bool) {
	if token == "" {
		return User{}, false
	}
	h := sha256.Sum256([]byte(token))
	var found User
	ok := false
	for name, want := range u.hashes {
		if subtle.ConstantTimeCompare(h[:], want) == 1 {
			found, ok = u.byName[name], true
		}
	}
	return found, ok
}

func (x User) principal() Principal {
	return Principal{Name: x.Name, Tenant: x.Tenant, Admin: x.Admin}
}

// sessions signs and checks the session cookie: name|expiry|HMAC with a
// key made at start-up (restarting the server signs everybody out).
type sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

const cookieName = "leasehold_session"

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return &sessions{key: k, ttl: ttl, now: now}
}

func (s *sessions) mac(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *sessions) issue(w http.ResponseWriter, r *http.Request, name string) {
	exp := s.now().Add(s.ttl).Unix()
	payload := base64.RawURLEncoding.EncodeToString([]byte(name)) + "." + strconv.FormatInt(exp, 10)
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: payload + "." + s.mac(payload), Path: "/", MaxAge: int(s.ttl.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// check returns the user name of a valid, unexpired cookie value.
func (s *sessions) check(v string) (string, bool) {
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return "", false
	}
	payload, sig := v[:i], v[i+1:]
	if !hmac.Equal([]byte(sig), []byte(s.mac(payload))) {
		return "", false
	}
	j := strings.LastIndexByte(payload, '.')
	if j < 0 {
		return "", false
	}
	exp, err := strconv.ParseInt(payload[j+1:], 10, 64)
	if err != nil || s.now().Unix() >= exp {
		return "", false
	}
	name, err := base64.RawURLEncoding.DecodeString(payload[:j])
	if err != nil {
		return "", false
	}
	return string(name), true
}

type principalKey struct{}

// authenticate finds the principal of a request: a bearer token (scripts,
// tests) or the session cookie (the page). A cookie naming a user no
// longer in the users file is refused.
func (s *Server) authenticate(r *http.Request) (Principal, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Principal{}, false
		}
		u, ok := s.users.byToken(strings.TrimSpace(tok))
		return u.principal(), ok
	}
	c, err := r.Cookie(cookieName)
	if err != nil {
		return Principal{}, false
	}
	name, ok := s.sessions.check(c.Value)
	if !ok {
		return Principal{}, false
	}
	u, ok := s.users.byName[name]
	return u.principal(), ok
}

// requireAuth lets authenticated requests through with their principal
// in the context, and answers 401 to the rest.
func (s *Server) requireAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(r)
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthorized", "sign in with your access token")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

func principalOf(r *http.Request) Principal {
	p, _ := r.Context().Value(principalKey{}).(Principal)
	return p
}

// sameOrigin refuses requests a browser marks as coming from another
// site: Sec-Fetch-Site (sent by every current browser) or an Origin that
// is not this server. Requests with neither (curl, scripts) carry no
// ambient credentials a forged request could abuse and pass.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		return o == scheme+r.Host
	}
	return true
}

// handleLogin exchanges a token (JSON {"token": "..."}) for the session
// cookie. It accepts only a same-origin JSON POST, so no other site can
// sign a visitor in (or out) behind their back.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if !s.checkPost(w, r) {
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "send {\"token\": \"...\"}")
		return
	}
	u, ok := s.users.byToken(strings.TrimSpace(body.Token))
	if !ok {
		s.log.Info("sign-in refused", zapRemote(r))
		writeError(w, http.StatusUnauthorized, "bad_token", "that access token is not valid")
		return
	}
	s.sessions.issue(w, r, u.Name)
	s.log.Info("signed in", zapUser(u.Name), zapRemote(r))
	writeJSON(w, http.StatusOK, u.principal())
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if !s.checkPost(w, r) {
		return
	}
	clearCookie(w, r)
	w.WriteHeader(http.StatusNoContent)
}

// checkPost enforces the CSRF rules for state-changing requests: POST,
// a JSON content type (which a cross-site form cannot send without a
// preflight this server never approves), and a same-origin request.
func (s *Server) checkPost(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method", "use POST")
		return false
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "content_type", "send application/json")
		return false
	}
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "cross_site", "cross-site request refused")
		return false
	}
	return true
}
