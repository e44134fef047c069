{{/*
Names, labels, images and checks shared by every template.
*/}}

{{- define "kafscale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: <release>-<chart>, or the release name alone when it already contains the chart name. */}}
{{- define "kafscale.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: (dict "ctx" $ "component" "operator"). Truncated so suffixes still fit 63 characters. */}}
{{- define "kafscale.componentName" -}}
{{- printf "%s-%s" (include "kafscale.fullname" .ctx | trunc 47 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "kafscale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "kafscale.labels" -}}
helm.sh/chart: {{ include "kafscale.chart" . }}
{{ include "kafscale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kafscale
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "kafscale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kafscale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one component's objects: (dict "ctx" $ "component" "proxy"). */}}
{{- define "kafscale.componentLabels" -}}
{{ include "kafscale.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "kafscale.componentSelectorLabels" -}}
{{ include "kafscale.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Image reference: (dict "image" .Values.x.image "path" "x.image" "ctx" $).
registry/repository:tag@digest; the tag defaults to the chart's appVersion, `useLatest` means
`latest`, and global.imageRegistry replaces the registry.
*/}}
{{- define "kafscale.image" -}}
{{- $img := .image -}}
{{- if and $img.useLatest (or $img.tag $img.digest) -}}
{{- fail (printf "%s.useLatest is true and %s.tag or %s.digest is set: remove the tag and digest, or set useLatest to false" .path .path .path) -}}
{{- end -}}
{{- $registry := default $img.registry .ctx.Values.global.imageRegistry -}}
{{- $tag := ternary "latest" (default .ctx.Chart.AppVersion $img.tag) (eq (toString $img.useLatest) "true") -}}
{{- $ref := printf "%s:%s" $img.repository (toString $tag) -}}
{{- if $registry -}}{{- $ref = printf "%s/%s" $registry $ref -}}{{- end -}}
{{- if $img.digest -}}{{- $ref = printf "%s@%s" $ref $img.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* Pull policy: Always with useLatest, else the configured one. */}}
{{- define "kafscale.imagePullPolicy" -}}
{{- if .useLatest -}}Always{{- else -}}{{ .pullPolicy }}{{- end -}}
{{- end -}}

{{/* The broker image: broker.image.* fields win over operator.brokerImage.* when set. */}}
{{- define "kafscale.brokerImageValues" -}}
{{- $base := deepCopy .Values.operator.brokerImage -}}
{{- $alias := .Values.broker.image -}}
{{- if and $alias.tag $base.tag (ne (toString $alias.tag) (toString $base.tag)) -}}
{{- fail (printf "broker.image.tag (%s) and operator.brokerImage.tag (%s) disagree: set the broker tag in one place only" (toString $alias.tag) (toString $base.tag)) -}}
{{- end -}}
{{- range $k := list "registry" "repository" "tag" "digest" "pullPolicy" -}}
{{- if index $alias $k -}}{{- $_ := set $base $k (index $alias $k) -}}{{- end -}}
{{- end -}}
{{- if $alias.useLatest -}}{{- $_ := set $base "useLatest" true -}}{{- end -}}
{{- toYaml $base -}}
{{- end -}}

{{/* ServiceAccount name of a component: (dict "ctx" $ "component" "operator"). */}}
{{- define "kafscale.serviceAccountName" -}}
{{- $sa := index .ctx.Values .component "serviceAccount" -}}
{{- if $sa.create -}}
{{- default (include "kafscale.componentName" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/*
Name of the operator's leader Lease (used when no etcd holds the lock): the leader key's
letters and digits, lower case, joined by '-' (at most 40), '-', and the first 8 hex digits of
the key's SHA-256. The operator derives the same name (operator/leader LeaseName).
*/}}
{{- define "kafscale.operatorLeaseName" -}}
{{- $key := .Values.operator.leaderKey | default (printf "/kafscale/%s/operator-leader" .Release.Namespace) -}}
{{- $readable := regexReplaceAll "[^a-z0-9]+" (lower $key) "-" | trimAll "-" | trunc 40 | trimSuffix "-" | default "operator-leader" -}}
{{- printf "%s-%s" $readable (sha256sum $key | trunc 8) -}}
{{- end -}}

{{/* etcd endpoints for the proxy or console: their own, then the operator's, then the managed etcd of clusterName. */}}
{{- define "kafscale.readerEtcdEndpoints" -}}
{{- $own := index .ctx.Values .component "etcdEndpoints" -}}
{{- if $own -}}
{{- join "," $own -}}
{{- else if .ctx.Values.operator.etcdEndpoints -}}
{{- join "," .ctx.Values.operator.etcdEndpoints -}}
{{- else -}}
{{- printf "http://%s-etcd.%s.svc:2379" .ctx.Values.clusterName .ctx.Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Name of the console login Secret (chart-made or existing). */}}
{{- define "kafscale.consoleSecretName" -}}
{{- default (include "kafscale.componentName" (dict "ctx" . "component" "console")) .Values.console.auth.existingSecret -}}
{{- end -}}

{{/* Name of the ConfigMap holding the environment of every broker. */}}
{{- define "kafscale.brokerEnvName" -}}
{{- include "kafscale.componentName" (dict "ctx" . "component" "broker-env") -}}
{{- end -}}

{{/* The advertised proxy host: proxy.advertisedHost, or the Service's cluster DNS name. */}}
{{- define "kafscale.proxyAdvertisedHost" -}}
{{- default (printf "%s.%s.svc" (include "kafscale.componentName" (dict "ctx" . "component" "proxy")) .Release.Namespace) .Values.proxy.advertisedHost -}}
{{- end -}}

{{/*
The proxy's internal listener port, or "" when it is off. `helm upgrade --reuse-values` from a
release older than proxy.internalListener renders with that release's values, which have no
such key: then it is off, as it was.
*/}}
{{- define "kafscale.proxyInternalPort" -}}
{{- $il := .Values.proxy.internalListener | default dict -}}
{{- if and .Values.proxy.enabled $il.enabled -}}{{ int $il.port }}{{- end -}}
{{- end -}}

{{- define "kafscale.proxyInternalHost" -}}
{{- printf "%s.%s.svc" (include "kafscale.componentName" (dict "ctx" . "component" "proxy-internal")) .Release.Namespace -}}
{{- end -}}

{{- define "kafscale.proxyAdvertisedPort" -}}
{{- if .Values.proxy.advertisedPort -}}{{ .Values.proxy.advertisedPort }}{{- else -}}{{ .Values.proxy.service.port }}{{- end -}}
{{- end -}}

{{/*
Pod spec fields shared by every component: (dict "ctx" $ "component" "proxy" "values" .Values.proxy).
*/}}
{{- define "kafscale.podScheduling" -}}
{{- $v := .values -}}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.topologySpreadConstraints }}
topologySpreadConstraints:
{{- range $v.topologySpreadConstraints }}
{{- $c := deepCopy . }}
{{- if not $c.labelSelector }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "kafscale.componentSelectorLabels" $ | fromYaml)) }}
{{- end }}
  - {{- toYaml $c | nindent 4 }}
{{- end }}
{{- end }}
securityContext:
  {{- toYaml $v.podSecurityContext | nindent 2 }}
{{- end -}}

{{/*
Checks of value combinations that the schema cannot express. Each failure says what to change.
*/}}
{{- define "kafscale.validate" -}}
{{- $v := .Values -}}
{{- if not (kindIs "invalid" $v.metrics.prometheusRule.snapshotStaleSeconds) -}}
{{- fail "metrics.prometheusRule.snapshotStaleSeconds has moved: set operator.etcdSnapshot.staleAfterSeconds instead (the operator judges staleness against it and the KafscaleSnapshotStale alert reads the operator's verdict), and remove metrics.prometheusRule.snapshotStaleSeconds" -}}
{{- end -}}
{{- if and (ge (int $v.operator.replicaCount) 2) (not $v.operator.leaderKey) -}}
{{- fail "operator.replicaCount is 2 or more but operator.leaderKey is empty: set operator.leaderKey (a key such as /kafscale/operator/leader: the etcd key of the lock, or the name of its Kubernetes Lease without etcd endpoints) so the replicas can elect a leader, or set operator.replicaCount=1" -}}
{{- end -}}
{{- if and $v.operator.acl.enabled (not $v.operator.acl.configJson) -}}
{{- fail "operator.acl.enabled is true but operator.acl.configJson is empty: brokers fail closed and would deny every client; set operator.acl.configJson to your ACL rules" -}}
{{- end -}}
{{- if $v.operator.acl.configJson -}}
{{- $parsed := fromJson $v.operator.acl.configJson -}}
{{- if hasKey $parsed "Error" -}}
{{- fail (printf "operator.acl.configJson is not a JSON object (%s): fix the JSON" (get $parsed "Error")) -}}
{{- end -}}
{{- end -}}
{{- if and (eq $v.operator.auth.principalSource "proxy_addr") (not $v.operator.auth.proxyProtocol) -}}
{{- fail "operator.auth.principalSource is proxy_addr but operator.auth.proxyProtocol is false: set operator.auth.proxyProtocol=true (the address comes from the PROXY protocol header), or choose client_id or remote_addr" -}}
{{- end -}}
{{- range $key := list "KAFSCALE_ACL_ENABLED" "KAFSCALE_ACL_CONFIG_JSON" "KAFSCALE_PRINCIPAL_SOURCE" "KAFSCALE_PROXY_PROTOCOL" -}}
{{- if hasKey $v.broker.env $key -}}
{{- fail (printf "broker.env.%s is set by the chart from operator.acl / operator.auth: set it there and remove it from broker.env" $key) -}}
{{- end -}}
{{- end -}}
{{- $a := $v.console.auth -}}
{{- if $a.existingSecret -}}
{{- if or $a.username $a.password -}}
{{- fail "console.auth.existingSecret is set together with console.auth.username/password: keep the login in the existing Secret and leave username and password empty" -}}
{{- end -}}
{{- else if and $a.username (not $a.password) -}}
{{- fail "console.auth.username is set without console.auth.password: set console.auth.password too, or name a Secret in console.auth.existingSecret" -}}
{{- else if and $a.password (not $a.username) -}}
{{- fail "console.auth.password is set without console.auth.username: set console.auth.username too, or name a Secret in console.auth.existingSecret" -}}
{{- end -}}
{{- if $v.console.ingress.enabled -}}
{{- if not $v.console.enabled -}}
{{- fail "console.ingress.enabled is true but console.enabled is false: enable the console or turn the Ingress off" -}}
{{- end -}}
{{- if not $v.console.ingress.hosts -}}
{{- fail "console.ingress.enabled is true but console.ingress.hosts is empty: add at least one host" -}}
{{- end -}}
{{- end -}}
{{- if $v.proxy.enabled -}}
{{- if and (has $v.proxy.service.type (list "LoadBalancer" "NodePort")) (not $v.proxy.advertisedHost) -}}
{{- fail (printf "proxy.service.type is %s but proxy.advertisedHost is empty: clients outside the cluster cannot resolve the Service's cluster DNS name; set proxy.advertisedHost to the load balancer's DNS name or IP" $v.proxy.service.type) -}}
{{- end -}}
{{- $internalPort := include "kafscale.proxyInternalPort" . -}}
{{- if and $internalPort (has (int $internalPort) (list 9092 (int $v.proxy.metrics.port))) -}}
{{- fail (printf "proxy.internalListener.port is %s, a port the proxy pod already uses (9092 is the main Kafka listener's, %d proxy.metrics.port): choose another, e.g. 9094" $internalPort (int $v.proxy.metrics.port)) -}}
{{- end -}}
{{- if and $v.proxy.service.loadBalancerSourceRanges (ne $v.proxy.service.type "LoadBalancer") -}}
{{- fail "proxy.service.loadBalancerSourceRanges is set but proxy.service.type is not LoadBalancer: set proxy.service.type=LoadBalancer or remove the ranges" -}}
{{- end -}}
{{- if and $v.proxy.service.nodePort (eq $v.proxy.service.type "ClusterIP") -}}
{{- fail "proxy.service.nodePort is set but proxy.service.type is ClusterIP: set proxy.service.type to NodePort or LoadBalancer, or set nodePort to 0" -}}
{{- end -}}
{{- if and $v.proxy.service.externalTrafficPolicy (eq $v.proxy.service.type "ClusterIP") -}}
{{- fail "proxy.service.externalTrafficPolicy is set but proxy.service.type is ClusterIP: it applies only to NodePort and LoadBalancer Services" -}}
{{- end -}}
{{- end -}}
{{- if and $v.proxy.enabled $v.metrics.serviceMonitor.enabled $v.metrics.serviceMonitor.proxy (not $v.proxy.metrics.service.enabled) -}}
{{- fail "metrics.serviceMonitor.proxy is true but proxy.metrics.service.enabled is false: the proxy's ServiceMonitor scrapes that Service; enable it, or set metrics.serviceMonitor.proxy=false" -}}
{{- end -}}
{{- if and $v.metrics.serviceMonitor.enabled (not $v.metrics.service.enabled) -}}
{{- fail "metrics.serviceMonitor.enabled is true but metrics.service.enabled is false: the ServiceMonitor scrapes that Service; enable it" -}}
{{- end -}}
{{- end -}}

{{/* Comma-joined `name` fields of a list of objects (imagePullSecrets). */}}
{{- define "kafscale.joinNames" -}}
{{- $names := list -}}
{{- range . -}}{{- $names = append $names .name -}}{{- end -}}
{{- join "," $names -}}
{{- end -}}
