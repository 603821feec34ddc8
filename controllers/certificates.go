package controllers

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

var secretGVK = corev1.SchemeGroupVersion.WithKind("Secret")

// certificateSource judges the Secrets that listeners reference without keeping any
// Secret's content: the cache holds only Secrets of type kubernetes.io/tls, the type Gateway
// API asks for, and of them only their metadata; a referenced Secret is read from the API
// server when its resourceVersion changes, and only the verdict on its certificate and key
// is remembered.
type certificateSource struct {
	metadata client.Reader
	live     client.Reader

	mu   sync.Mutex
	memo map[types.NamespacedName]certificateVerdict
}

type certificateVerdict struct {
	resourceVersion string
	problem         string
}

func newCertificateSource(metadata, live client.Reader) *certificateSource {
	return &certificateSource{metadata: metadata, live: live, memo: map[types.NamespacedName]certificateVerdict{}}
}

// States judges the Secrets a Gateway may use (status.PermittedCertificateSecrets); a
// Secret that does not exist is left out of the result.
func (s *certificateSource) States(ctx context.Context, keys []types.NamespacedName) (status.CertificateStates, error) {
	out := status.CertificateStates{}
	for _, key := range keys {
		problem, found, err := s.judge(ctx, key)
		if err != nil {
			return nil, err
		}
		if found {
			out[key] = problem
		}
	}
	return out, nil
}

func (s *certificateSource) judge(ctx context.Context, key types.NamespacedName) (problem string, found bool, err error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(secretGVK)
	if err := s.metadata.Get(ctx, key, meta); err != nil {
		if apierrors.IsNotFound(err) {
			s.forget(key)
			return s.outsideCache(ctx, key)
		}
		return "", false, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	s.mu.Lock()
	cached, ok := s.memo[key]
	s.mu.Unlock()
	if ok && cached.resourceVersion == meta.ResourceVersion {
		return cached.problem, true, nil
	}
	secret := &corev1.Secret{}
	if err := s.live.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			s.forget(key)
			return "", false, nil
		}
		return "", false, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	problem = certificateProblem(secret)
	s.mu.Lock()
	s.memo[key] = certificateVerdict{resourceVersion: secret.ResourceVersion, problem: problem}
	s.mu.Unlock()
	return problem, true, nil
}

// outsideCache tells a Secret that does not exist from one of another type, which the
// cache leaves out: the user needs to know which. A Secret's type cannot change, so
// nothing needs watching here; a new Secret of the right type enters the cache.
func (s *certificateSource) outsideCache(ctx context.Context, key types.NamespacedName) (problem string, found bool, err error) {
	secret := &corev1.Secret{}
	if err := s.live.Get(ctx, key, secret); err != nil {
		if apierrors.IsNotFound(err) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	if secret.Type == corev1.SecretTypeTLS {
		// Created after the cache last heard: its event brings the Gateway back.
		return certificateProblem(secret), true, nil
	}
	return fmt.Sprintf("it is of type %s; certificateRefs need a Secret of type %s", secret.Type, corev1.SecretTypeTLS), true, nil
}

func (s *certificateSource) forget(key types.NamespacedName) {
	s.mu.Lock()
	delete(s.memo, key)
	s.mu.Unlock()
}

// certificateProblem says why a Secret cannot serve TLS, or "" when it is of type
// kubernetes.io/tls and its tls.crt and tls.key hold a certificate chain and the matching
// private key.
func certificateProblem(secret *corev1.Secret) string {
	if secret.Type != corev1.SecretTypeTLS {
		return fmt.Sprintf("it is of type %s; certificateRefs need a Secret of type %s", secret.Type, corev1.SecretTypeTLS)
	}
	crt, hasCrt := secret.Data[corev1.TLSCertKey]
	key, hasKey := secret.Data[corev1.TLSPrivateKeyKey]
	if !hasCrt || !hasKey {
		return fmt.Sprintf("it needs the keys %s and %s (a Secret of type %s)", corev1.TLSCertKey, corev1.TLSPrivateKeyKey, corev1.SecretTypeTLS)
	}
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		return err.Error()
	}
	return ""
}

// referenceGrants returns the ReferenceGrants of the namespaces whose grants decide a
// Gateway's cross-namespace certificate references.
func referenceGrants(ctx context.Context, reader client.Reader, gw *gatewayv1.Gateway) ([]gatewayv1.ReferenceGrant, error) {
	var out []gatewayv1.ReferenceGrant
	for _, ns := range status.GrantNamespaces(gw) {
		list := &gatewayv1.ReferenceGrantList{}
		if err := reader.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing ReferenceGrants in namespace %s: %w", ns, err)
		}
		out = append(out, list.Items...)
	}
	return out, nil
}
