package apierror

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestAPIErrorsAreToldApart(t *testing.T) {
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	cases := []struct {
		name               string
		err                error
		refusal, transient bool
	}{
		{"invalid object", apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, "x", nil), true, false},
		{"bad request", apierrors.NewBadRequest("no"), true, false},
		{"forbidden", apierrors.NewForbidden(deployments, "x", errors.New("rbac")), true, false},
		{"delete precondition conflict", apierrors.NewConflict(deployments, "x", errors.New("uid")), false, true},
		{"throttled", apierrors.NewTooManyRequests("slow down", 1), false, true},
		{"server error", apierrors.NewInternalError(errors.New("etcd")), false, true},
		{"unavailable", apierrors.NewServiceUnavailable("starting"), false, true},
		{"server timeout", apierrors.NewServerTimeout(deployments, "patch", 1), false, true},
		{"request timeout", apierrors.NewTimeoutError("slow", 1), false, true},
		{"wrapped server error", fmt.Errorf("applying Deployment ns/x: %w", apierrors.NewInternalError(errors.New("etcd"))), false, true},
		{"API server down", &url.Error{Op: "Patch", URL: "https://127.0.0.1:6443", Err: syscall.ECONNREFUSED}, false, true},
		{"connection reset", fmt.Errorf("reading: %w", syscall.ECONNRESET), false, true},
		{"not found", apierrors.NewNotFound(deployments, "x"), false, false},
		{"a bug of ours", errors.New("converting Deployment: bad field"), false, false},
		{"shutting down", context.Canceled, false, false},
	}
	for _, tc := range cases {
		if got := IsRefusal(tc.err); got != tc.refusal {
			t.Errorf("%s: IsRefusal = %t, want %t", tc.name, got, tc.refusal)
		}
		if got := IsTransient(tc.err); got != tc.transient {
			t.Errorf("%s: IsTransient = %t, want %t", tc.name, got, tc.transient)
		}
	}
}

func TestImmutableFieldsComeFromTheAPIServersCauses(t *testing.T) {
	service := schema.GroupKind{Kind: "Service"}
	cases := []struct {
		name string
		err  error
		want []string
	}{
		{"a load balancer class", apierrors.NewInvalid(service, "gw-istio", field.ErrorList{
			field.Invalid(field.NewPath("spec", "loadBalancerClass"), "b", "may not change once set"),
		}), []string{"spec.loadBalancerClass"}},
		{"a selector, and a field that is only invalid", apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "gw-istio", field.ErrorList{
			field.Invalid(field.NewPath("spec", "selector"), "x", "field is immutable"),
			field.Invalid(field.NewPath("spec", "replicas"), -1, "must be greater than or equal to 0"),
		}), []string{"spec.selector"}},
		{"only invalid", apierrors.NewInvalid(service, "gw-istio", field.ErrorList{
			field.Required(field.NewPath("spec", "ports"), ""),
		}), nil},
		{"not an Invalid answer", apierrors.NewBadRequest("field is immutable"), nil},
		{"wrapped", fmt.Errorf("applying Service: %w", apierrors.NewInvalid(service, "gw-istio", field.ErrorList{
			field.Invalid(field.NewPath("spec", "clusterIPs").Index(0), "10.0.0.2", "may not change once set"),
		})), []string{"spec.clusterIPs[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ImmutableFields(c.err); !slices.Equal(got, c.want) {
				t.Errorf("ImmutableFields = %q, want %q", got, c.want)
			}
		})
	}
}
