package dist

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
)

// TestTLSListener: a listener with a certificate; a worker trusting its CA
// (worker --tls-ca) joins with tls:// and runs a job, one without the CA
// is refused the connection.
func TestTLSListener(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evomerge test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := StartServer(ServerOptions{StoreDir: t.TempDir(), Listen: "127.0.0.1:0", Token: "tok",
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	url := "tls://tok@" + srv.Addr()
	if nc, err := Dial(url, "untrusting"); err == nil {
		nc.Close()
		t.Fatal("a client without the CA connected")
	}
	cnc, err := connect(url, "coordinator", false, certFile)
	if err != nil {
		t.Fatal(err)
	}
	defer cnc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := OpenCoordinator(ctx, cnc, CoordinatorOptions{Info: RunInfo{Run: "tls", AckWait: time.Second, MaxDeliver: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(true)
	wnc, err := DialWorker(url, "worker", certFile)
	if err != nil {
		t.Fatal(err)
	}
	defer wnc.Close()
	s := &scorer{runs: map[string]int{}}
	go Join(ctx, wnc, JoinOptions{Start: func(context.Context, RunInfo, eval.PrepareRequest) (Started, error) { return Started{Exec: s}, nil }})
	o, err := c.Submit(ctx, Job{Key: "k", Request: eval.CandidateRequest{Recipe: "linear"}}, nil)
	if err != nil || o.Err != "" {
		t.Fatalf("job over TLS: %v %+v", err, o)
	}
}
