{{/*
Names, labels and small shared pieces. Every per-stage template is called with
(dict "ctx" $ "stage" "<stage>").
*/}}

{{/* The five pipeline stages, in pipeline order; a stage under .Values.stages must be one of them. */}}
{{- define "spinescreen.knownStages" -}}
ingest inference morphometry rendering publisher
{{- end }}

{{- define "spinescreen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped base name; per-stage resources append "-<stage>" (kept within 63 chars). */}}
{{- define "spinescreen.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "spinescreen.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "spinescreen.labels" -}}
helm.sh/chart: {{ include "spinescreen.chart" . }}
app.kubernetes.io/name: {{ include "spinescreen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: spinescreen
{{- end }}

{{/* Selector labels of one stage: (dict "ctx" $ "stage" $stage). */}}
{{- define "spinescreen.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spinescreen.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .stage }}
{{- end }}

{{/* Name of one stage's Deployment, Service, PDB and ScaledObject: (dict "ctx" $ "stage" $stage). */}}
{{- define "spinescreen.stageName" -}}
{{- printf "%s-%s" (include "spinescreen.fullname" .ctx) .stage }}
{{- end }}

{{/* Work queue of a stage, as in proto's Stage::queue. */}}
{{- define "spinescreen.queue" -}}
{{- printf "spinescreen.%s" . }}
{{- end }}

{{- define "spinescreen.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "spinescreen.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "spinescreen.fullname" .) }}
{{- end }}
{{- end }}

{{/* Fails the render on a stage name that is not part of the pipeline. */}}
{{- define "spinescreen.checkStage" -}}
{{- if not (has . (splitList " " (include "spinescreen.knownStages" nil))) }}
{{- fail (printf "stages.%s: unknown stage; known: %s" . (include "spinescreen.knownStages" nil)) }}
{{- end }}
{{- end }}

{{/* `key = value` lines for a flat map of extra config (scalars or lists; JSON is valid TOML for them). */}}
{{- define "spinescreen.tomlPairs" -}}
{{- range $k, $v := . }}
{{- if kindIs "map" $v }}
{{- fail (printf "extraConfig key %q: nested tables are not supported, use a flat key" $k) }}
{{- end }}
{{ $k }} = {{ toJson $v }}
{{- end }}
{{- end }}
