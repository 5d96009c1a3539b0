{{/* Common labels; `component` names the part (agent, streams, validator, migrate). */}}
{{- define "sysweave.labels" -}}
app.kubernetes.io/name: sysweave-{{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/part-of: sysweave
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ .root.Chart.Name }}-{{ .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "sysweave.selector" -}}
app.kubernetes.io/name: sysweave-{{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{- define "sysweave.image" -}}
{{ .repository }}:{{ .tag }}
{{- end -}}

{{- define "sysweave.priorityClassName" -}}
{{ .Values.priorityClass.name | default (printf "%s-node-critical" .Release.Name) }}
{{- end -}}

{{/* Non-root pod and container security for the workers, the validator and the migrate Job. */}}
{{- define "sysweave.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .Values.nonRootUser }}
runAsGroup: {{ .Values.nonRootUser }}
fsGroup: {{ .Values.nonRootUser }}
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "sysweave.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}
