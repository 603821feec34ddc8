{{/* The prefix of every object's name: one release per revision, so a revision's objects carry its name. */}}
{{- define "igo.fullname" -}}
istio-gateway-operator{{ with .Values.revision }}-{{ . }}{{ end }}
{{- end }}

{{/* The control-plane namespace: class defaults, istiod and the leader Lease live there. */}}
{{- define "igo.systemNamespace" -}}
{{ .Values.systemNamespace | default .Release.Namespace }}
{{- end }}

{{/* Labels of every object: the name config/ gives them too, and Helm's own. */}}
{{- define "igo.labels" -}}
app.kubernetes.io/name: istio-gateway-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* The pods of this release, and only them: the default release's selector must not match
a revision's pods, or its webhook Service would send calls to a server with another CA. */}}
{{- define "igo.selectorLabels" -}}
control-plane: controller-manager{{ with .Values.revision }}-{{ . }}{{ end }}
{{- end }}

{{/* The names the manager's flags and the RBAC resourceNames share. */}}
{{- define "igo.webhookSecret" -}}{{ include "igo.fullname" . }}-webhook-server-cert{{- end }}
{{- define "igo.webhookConfiguration" -}}{{ include "igo.fullname" . }}-validating-webhook-configuration{{- end }}
{{- define "igo.webhookService" -}}{{ include "igo.fullname" . }}-webhook-service{{- end }}
{{- define "igo.serviceAccount" -}}{{ include "igo.fullname" . }}-controller-manager{{- end }}
