// Package apierror tells the API server's answers apart, as the reconciler acts on them:
// a refusal of the object itself is reported at once, a transient failure is retried with
// backoff, and an immutable field names what cannot change in place.
package apierror

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// IsRefusal tells the API server's verdicts on the object itself, which it will repeat on
// every retry: they are reported at once (Programmed=False, reason Invalid).
func IsRefusal(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) ||
		apierrors.IsMethodNotSupported(err) || apierrors.IsNotAcceptable(err) || apierrors.IsUnsupportedMediaType(err) ||
		apierrors.IsRequestEntityTooLargeError(err)
}

// ImmutableFields names the fields an Invalid answer says cannot change on an existing
// object ("field is immutable", "may not change once set"), as the API server's own
// validation decides them: a Service's loadBalancerClass or clusterIP, a Deployment's
// selector. None for any other error.
func ImmutableFields(err error) []string {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return nil
	}
	var fields []string
	for _, cause := range status.Status().Details.Causes {
		message := strings.ToLower(cause.Message)
		if cause.Field != "" && (strings.Contains(message, "immutable") || strings.Contains(message, "may not change once set")) &&
			!slices.Contains(fields, cause.Field) {
			fields = append(fields, cause.Field)
		}
	}
	return fields
}

// IsTransient tells the API errors a later retry may not meet: conflicts (a delete's UID
// precondition), throttling, server errors and timeouts, and an API server that cannot be
// reached. They are retried with backoff and reported only when they last
// (Options.FailureReportDelay).
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return apierrors.IsConflict(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) ||
			apierrors.IsTimeout(err) || apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err) ||
			apierrors.IsUnexpectedServerError(err)
	}
	var urlErr *url.Error
	var netErr net.Error
	return errors.As(err, &urlErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
