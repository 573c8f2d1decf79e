{{/*
Names and metadata shared by every object. Names come from the chart (the Slipway service), not
from the release: the IAM role trusts the service account of that name.
*/}}

{{- define "slipway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "slipway.namespace" -}}
{{- default .Release.Namespace .Values.namespace -}}
{{- end -}}

{{/* The labels the selectors use; they never change for a running service. */}}
{{- define "slipway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "slipway.name" . | quote }}
app.kubernetes.io/instance: {{ include "slipway.name" . | quote }}
{{- end -}}

{{- define "slipway.labels" -}}
{{ include "slipway.selectorLabels" . }}
app.kubernetes.io/part-of: {{ include "slipway.name" . | quote }}
app.kubernetes.io/managed-by: slipway
slipway.dev/team: {{ .Values.slipway.team | quote }}
slipway.dev/environment: {{ .Values.slipway.environment | quote }}
{{- end -}}

{{- define "slipway.annotations" -}}
slipway.dev/owner: {{ .Values.slipway.team | quote }}
slipway.dev/repo-url: {{ .Values.slipway.repoUrl | quote }}
slipway.dev/generator: {{ .Values.slipway.generator | quote }}
{{- end -}}

{{/* metadata of an object named after the service. */}}
{{- define "slipway.metadata" -}}
name: {{ include "slipway.name" . | quote }}
namespace: {{ include "slipway.namespace" . | quote }}
labels:
  {{- include "slipway.labels" . | nindent 2 }}
annotations:
  {{- include "slipway.annotations" . | nindent 2 }}
{{- end -}}
