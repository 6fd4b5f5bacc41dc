{{/* The release's full name: the release name, prefixed with the chart name unless it has it. */}}
{{- define "toystore-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Selector labels. app.kubernetes.io/name is always "toystore-operator": every store's
NetworkPolicy admits pods with exactly this label to the order replicas' admin API.
*/}}
{{- define "toystore-operator.selectorLabels" -}}
app.kubernetes.io/name: toystore-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "toystore-operator.labels" -}}
{{ include "toystore-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "toystore-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "toystore-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "toystore-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.registry -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
The operator's permissions. operator/src/rbac.rs holds the same list, and the packaging test
fails if the two differ; the reconcile tests check every request the operator sends against it.
*/}}
{{- define "toystore-operator.rules" -}}
# The controller watches stores; the finalizer is added and removed by patch; a backup's
# round reads its store.
- apiGroups: ["toystore.dev"]
  resources: ["toystores"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["toystore.dev"]
  resources: ["toystores/status"]
  verbs: ["patch"]
# Backups: watched by their controller, created by a store's schedule, deleted by its retention.
- apiGroups: ["toystore.dev"]
  resources: ["toystorebackups"]
  verbs: ["list", "watch", "create", "delete"]
- apiGroups: ["toystore.dev"]
  resources: ["toystorebackups/status"]
  verbs: ["patch"]
# Owner references with blockOwnerDeletion, where OwnerReferencesPermissionEnforcement is on.
- apiGroups: ["toystore.dev"]
  resources: ["toystores/finalizers", "toystorebackups/finalizers"]
  verbs: ["update"]
# The Raft token: created once, read once per operator process, never listed.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
# Objects the operator applies: watched into the caches each round reads (no GETs);
# server-side apply creates missing ones, hence create.
- apiGroups: [""]
  resources: ["configmaps", "services", "serviceaccounts"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["statefulsets", "deployments"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "patch"]
# Backup and restore Jobs: created once, never changed or deleted (their owners' deletion
# removes them); watched; a backup's round reads its own.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create"]
# Rolling upgrades delete order pods one by one; a backup's round lists its Job's pod to read
# its result. Watched for the caches.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "delete"]
# Scale-down and deletion remove departed replicas' volumes; a restore creates replica 0's.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["list", "watch", "create", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
