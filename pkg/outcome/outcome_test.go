package outcome

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/kubegate/istio-gateway-operator/pkg/status"
)

func TestReportKeepsTheProblemThatOutranksTheOthers(t *testing.T) {
	cases := []struct {
		name        string
		reports     []State
		wantState   State
		wantMessage string
	}{
		{"nothing reported", nil, Applied, ""},
		{"one problem", []State{Refused}, Refused, "0"},
		{"a later, higher problem replaces a lower one", []State{Contended, Immutable}, Immutable, "1"},
		{"a lower problem does not replace a higher one", []State{Immutable, Refused}, Immutable, "0"},
		{"problems of one state join their messages", []State{Immutable, Refused, Immutable}, Immutable, "0; 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := &Result{}
			for i, s := range tc.reports {
				res.Report(s, string(rune('0'+i)))
			}
			if res.State != tc.wantState || res.Message != tc.wantMessage {
				t.Errorf("state %d %q, want %d %q", res.State, res.Message, tc.wantState, tc.wantMessage)
			}
		})
	}
}

func TestRefusedWritesAreRetriedWhateverIsTold(t *testing.T) {
	res := &Result{}
	if res.RetryError() != nil {
		t.Fatal("a retry without any refused write")
	}
	res.Refuse("applying Service ns/gw-istio: invalid")
	res.Report(Immutable, "Deployment ns/gw-istio: spec.selector cannot change")
	if res.State != Immutable {
		t.Errorf("state %d, want Immutable (it outranks Refused)", res.State)
	}
	if err := res.RetryError(); err == nil || err.Error() != "applying Service ns/gw-istio: invalid" {
		t.Errorf("retry error %v, want the refused write", err)
	}
}

func TestEveryProblemIsToldOnProgrammedAndResourcesApplied(t *testing.T) {
	gw := &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns", Generation: 4}}
	for state := Retrying; state <= RevisionNotInstalled; state++ {
		if _, ok := telling[state]; !ok {
			t.Errorf("state %d has no row in telling", state)
			continue
		}
		st := GatewayStatus(gw, &Result{State: state, Message: "the detail"}, status.ListenerInputs{}, "asm-1-26")
		if len(st.Conditions) != 4 {
			t.Errorf("state %d: %d conditions, want Accepted, Programmed, CustomizationsApplied and ResourcesApplied", state, len(st.Conditions))
		}
		for _, conditionType := range []string{string(gatewayv1.GatewayConditionProgrammed), status.ConditionResourcesApplied} {
			c := findCondition(t, st, conditionType)
			if c.Status != metav1.ConditionFalse {
				t.Errorf("state %d: %s is %s, want False", state, conditionType, c.Status)
			}
		}
		if resources := findCondition(t, st, status.ConditionResourcesApplied); !strings.Contains(resources.Message, "the detail") {
			t.Errorf("state %d: ResourcesApplied %q does not give the detail", state, resources.Message)
		}
		if row := telling[state]; row.accepted != "" {
			if accepted := findCondition(t, st, string(gatewayv1.GatewayConditionAccepted)); accepted.Status != metav1.ConditionFalse || accepted.Reason != string(row.accepted) {
				t.Errorf("state %d: Accepted %s/%s, want False/%s", state, accepted.Status, accepted.Reason, row.accepted)
			}
		}
	}
}
