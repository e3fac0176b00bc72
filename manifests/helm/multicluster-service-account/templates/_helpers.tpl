{{/*
Names are fixed, as in manifests/install.yaml: the ClusterRoles, the webhook configuration, the
admission policies and the CRDs are cluster-wide, so a cluster holds one installation (one
release) and its objects keep the names the documentation, kubemcsa and the policies use.
*/}}
{{- define "mcsa.name" -}}multicluster-service-account{{- end }}
{{- define "mcsa.controller" -}}multicluster-service-account-controller{{- end }}
{{- define "mcsa.webhook" -}}multicluster-service-account-webhook{{- end }}
{{- define "mcsa.webhookTLSSecret" -}}multicluster-service-account-webhook-tls{{- end }}

{{/* The install namespace: the release namespace. */}}
{{- define "mcsa.namespace" -}}{{ .Release.Namespace }}{{- end }}

{{/* Labels (and selector) of one component: include "mcsa.labels" "controller". */}}
{{- define "mcsa.labels" -}}
app.kubernetes.io/name: {{ include "mcsa.name" . }}
app.kubernetes.io/component: {{ . }}
{{- end }}

{{- define "mcsa.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The container's LOG_LEVEL: include "mcsa.logLevel" (list $ .Values.controller). */}}
{{- define "mcsa.logLevel" -}}
{{ (index . 1).logLevel | default (index . 0).Values.logLevel }}
{{- end }}

{{/* The `username` of a ServiceAccount of the install namespace in admission requests. */}}
{{- define "mcsa.serviceAccountUser" -}}
system:serviceaccount:{{ include "mcsa.namespace" .root }}:{{ .name }}
{{- end }}

{{- define "mcsa.selfManagedTLS" -}}
{{- if eq .Values.webhook.tls.mode "self-managed" }}true{{ end }}
{{- end }}

{{/* Where the files mode mounts the webhook's certificate Secret. */}}
{{- define "mcsa.tlsDir" -}}/etc/multicluster-service-account/tls{{- end }}

{{/* The pod and container security settings every Deployment of the chart shares. */}}
{{- define "mcsa.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "mcsa.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/*
What values.schema.json cannot say clearly: the TLS values that belong together. Field by field,
the schema checks the values before this runs.
*/}}
{{- define "mcsa.checkTLS" -}}
{{- $tls := .Values.webhook.tls }}
{{- if eq $tls.mode "files" }}
{{- if not $tls.secretName }}
{{- fail "webhook.tls.mode=files needs webhook.tls.secretName: the kubernetes.io/tls Secret (tls.crt, tls.key) the webhook serves" }}
{{- end }}
{{- if not (or $tls.caBundle $tls.injectCAFrom) }}
{{- fail "webhook.tls.mode=files needs webhook.tls.caBundle (the PEM of the CA that signed the certificate) or webhook.tls.injectCAFrom (<namespace>/<Certificate> for cert-manager's CA injector): without a caBundle the API server cannot call the webhook" }}
{{- end }}
{{- else }}
{{- range $k := list "secretName" "caBundle" "injectCAFrom" }}
{{- if index $tls $k }}
{{- fail (printf "webhook.tls.%s is only used with webhook.tls.mode=files; with self-managed TLS the webhook makes its own certificate" $k) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
