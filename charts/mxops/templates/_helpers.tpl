{{- define "mxops.labels" -}}
app.kubernetes.io/name: mxops
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
{{- define "mxops.selector" -}}
app.kubernetes.io/name: mxops
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}
{{- define "mxops.fullname" -}}
{{- if eq .Release.Name "mxops" }}mxops{{ else }}{{ printf "%s-mxops" .Release.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}
{{- define "mxops.webhookService" -}}{{ include "mxops.fullname" . }}-webhook{{- end }}
