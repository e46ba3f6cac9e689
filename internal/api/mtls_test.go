package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func certFor(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IsCA:        isCA, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMutualTLS: a client certificate signed by the configured CA is a
// credential (its common name is logged); without one, or with one from
// another CA, state-changing calls are refused.
func TestMutualTLS(t *testing.T) {
	ca, caKey, _ := certFor(t, "reachd-clients", nil, nil, true)
	_, _, client := certFor(t, "ops-laptop", ca, caKey, false)
	other, otherKey, _ := certFor(t, "other-ca", nil, nil, true)
	_, _, stranger := certFor(t, "stranger", other, otherKey, false)
	_, _, server := certFor(t, "reachd", ca, caKey, false)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	var logs syncBuf
	srv := httptest.NewUnstartedServer(RequireCredential(Audit(New(&fakeBackend{}), slog.New(slog.NewTextHandler(&logs, nil))), nil, nil))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{server}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	post := func(cert *tls.Certificate) int {
		tc := &tls.Config{RootCAs: pool}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := hc.Post(srv.URL+"/v1/reload", "application/json", nil)
		if err != nil {
			return -1 // the handshake refused the certificate
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(&client); got != http.StatusOK {
		t.Errorf("client certificate of the CA: %d, want 200", got)
	}
	if got := post(nil); got != http.StatusUnauthorized {
		t.Errorf("no client certificate: %d, want 401", got)
	}
	if got := post(&stranger); got == http.StatusOK {
		t.Errorf("certificate of another CA accepted")
	}
	if !strings.Contains(logs.String(), `\"cert:ops-laptop\" (tcp)`) {
		t.Errorf("audit log lacks the certificate's name:\n%s", logs.String())
	}
}
