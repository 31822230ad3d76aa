package imagepull

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"banger/api/errdefs"
)

// RegistryError turns what the registry or the network said into a
// message that says what to do.
func RegistryError(ref name.Reference, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	reg := ref.Context().RegistryStr()
	var te *transport.Error
	if errors.As(err, &te) {
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden || hasCode(te, transport.UnauthorizedErrorCode, transport.DeniedErrorCode):
			return errdefs.Invalid("registry %s refused access to %s (%v); log in with 'docker login %s' (banger reads the docker config: $DOCKER_CONFIG or ~/.docker/config.json) or check the name", reg, ref.Context().RepositoryStr(), te.StatusCode, reg)
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode):
			return errdefs.NotFound("%s not found in registry %s; check the repository name and tag", ref, reg)
		case te.StatusCode == http.StatusTooManyRequests:
			return errdefs.Unavailable("registry %s is rate-limiting pulls; wait and retry, or log in with 'docker login %s'", reg, reg)
		}
		return fmt.Errorf("pulling %s from %s: %w", ref, reg, err)
	}
	if certError(err) {
		return errdefs.Invalid("registry %s presented a TLS certificate this host does not trust (%v); add its CA to the system trust store, or pass --insecure for a registry on loopback or a private network", reg, err)
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return errdefs.Unavailable("cannot reach registry %s (%v); check the network and the registry name, or pass --insecure for a plain-HTTP registry on loopback or a private network", reg, err)
	}
	return fmt.Errorf("pulling %s: %w", ref, err)
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

// certError reports whether err is a failed TLS certificate check: a
// self-signed, expired or misnamed certificate.
func certError(err error) bool {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}
