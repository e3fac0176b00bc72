// The controller-runtime peer of `npm run bench:controller` (SPEC §12): the minimal Go controller
// a Go team would write for the same per-import work as the TypeScript controller, measured in the
// same run on the same clusters. Per ServiceAccountImport: TokenRequest in its source cluster (one
// clientset per source, from the registrations' Secrets read once at start), server-side apply of
// the generated Secret (the keys, labels, annotations and owner reference of src/secret.ts
// buildImportSecret), a merge patch of the import's status (Ready=True, TokenIssued), and a
// requeue at the controller's refresh time (src/controller/decide.ts refreshTime). A Secret that
// is still current is left alone, so a resync does not mint again.
//
// It does only what the bench needs: the consent decisions (policies, grants) are made by the
// bench, which passes each source's TokenRequest plan in --plans (src/controller/decide.ts
// tokenRequestFor); imports without a plan are logged and left alone. Registrations (imports in
// the install namespace) are not reconciled.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Names fixed by src/constants.ts.
const (
	group               = "multicluster.admiralty.io"
	version             = "v1alpha1"
	importKind          = "ServiceAccountImport"
	importLabel         = group + "/service-account-import.name"
	rotateAnnotation    = group + "/rotate"
	fieldManager        = "multicluster-service-account-controller"
	mountRoot           = "/var/run/secrets/admiralty.io/serviceaccountimports"
	minRefreshAfter     = 60 * time.Second
	annotationIssued    = group + "/token-issued"
	annotationExpires   = group + "/token-expiration"
	annotationRemoteUID = group + "/remote-service-account-uid"
	annotationPrint     = group + "/fingerprint"
	annotationRotation  = group + "/rotation"
	annotationDataHash  = group + "/data-hash"
)

var importGVK = schema.GroupVersionKind{Group: group, Version: version, Kind: importKind}

// plan is what the bench decided for imports of one remote ServiceAccount of one source
// (src/controller/decide.ts tokenRequestFor): the TokenRequest and the fingerprint its Secret carries.
type plan struct {
	ClusterName       string   `json:"clusterName"`
	Namespace         string   `json:"namespace"`
	Name              string   `json:"name"`
	ExpirationSeconds int64    `json:"expirationSeconds"`
	Audiences         []string `json:"audiences"`
	BoundSecret       string   `json:"boundSecret,omitempty"`
	BoundSecretUID    string   `json:"boundSecretUid,omitempty"`
	Fingerprint       string   `json:"fingerprint"`
}

// source is a registered source cluster: its endpoint and one clientset (one connection pool).
type source struct {
	server string
	caPem  string
	client kubernetes.Interface
}

var (
	readyImports = prometheus.NewGauge(prometheus.GaugeOpts{Name: "peer_imports_ready", Help: "Imports this process has reported Ready=True (TokenIssued)."})
	tokensMinted = prometheus.NewCounter(prometheus.CounterOpts{Name: "peer_tokens_minted_total", Help: "TokenRequests that succeeded."})
)

func main() {
	var (
		installNamespace string
		plansFile        string
		metricsAddr      string
		concurrency      int
		refreshRatio     float64
	)
	flag.StringVar(&installNamespace, "install-namespace", "multicluster-service-account", "namespace of the registrations' Secrets and the Lease")
	flag.StringVar(&plansFile, "plans", "", "JSON file: the TokenRequest plan of each source cluster and remote ServiceAccount")
	flag.StringVar(&metricsAddr, "metrics-bind-address", "127.0.0.1:8080", "where /metrics is served")
	flag.IntVar(&concurrency, "concurrency", 10, "MaxConcurrentReconciles")
	flag.Float64Var(&refreshRatio, "refresh-ratio", 0.6, "refresh tokens at this fraction of their granted lifetime (±0.05 jitter)")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("go-peer")
	if err := run(installNamespace, plansFile, metricsAddr, concurrency, refreshRatio); err != nil {
		log.Error(err, "exiting")
		os.Exit(1)
	}
}

func run(installNamespace, plansFile, metricsAddr string, concurrency int, refreshRatio float64) error {
	plans, err := readPlans(plansFile)
	if err != nil {
		return err
	}
	cfg := ctrl.GetConfigOrDie() // --kubeconfig; client-side rate limiting off (QPS -1), as controller-runtime defaults
	metrics.Registry.MustRegister(readyImports, tokensMinted)
	hasImportLabel, err := labels.NewRequirement(importLabel, selection.Exists, nil)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:        "0",
		LeaderElection:                true,
		LeaderElectionID:              "multicluster-service-account-go-peer",
		LeaderElectionNamespace:       installNamespace,
		LeaderElectionReleaseOnCancel: true,
		// Like the TypeScript controller, only the Secrets it labels are listed and watched.
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.NewSelector().Add(*hasImportLabel)},
		}},
	})
	if err != nil {
		return err
	}
	// The registrations, read once (uncached; the ServiceAccount may list labelled Secrets, not get them).
	sources, err := readSources(context.Background(), mgr.GetAPIReader(), installNamespace, hasImportLabel)
	if err != nil {
		return err
	}
	r := &reconciler{client: mgr.GetClient(), sources: sources, plans: plans, installNamespace: installNamespace, refreshRatio: refreshRatio}
	imp := &unstructured.Unstructured{}
	imp.SetGroupVersionKind(importGVK)
	err = ctrl.NewControllerManagedBy(mgr).
		For(imp, builder.WithPredicates(predicate.GenerationChangedPredicate{}, predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetNamespace() != installNamespace }))).
		Owns(&corev1.Secret{}).
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Complete(r)
	if err != nil {
		return err
	}
	ctx := ctrl.SetupSignalHandler()
	go func() {
		select {
		case <-mgr.Elected():
			// The bench measures from this line, as it does from the TypeScript controller's "became leader".
			fmt.Fprintf(os.Stdout, "{\"msg\":\"became leader\",\"timestamp\":%q}\n", time.Now().UTC().Format(time.RFC3339Nano))
		case <-ctx.Done():
		}
	}()
	return mgr.Start(ctx)
}

func readPlans(file string) (map[string]plan, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading --plans: %w", err)
	}
	var list []plan
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("decoding --plans %s: %w", file, err)
	}
	byKey := make(map[string]plan, len(list))
	for _, p := range list {
		byKey[planKey(p.ClusterName, p.Namespace, p.Name)] = p
	}
	return byKey, nil
}

func planKey(cluster, namespace, name string) string { return cluster + "/" + namespace + "/" + name }

// readSources builds one clientset per registration: a Secret of the install namespace carrying
// a credential (src/secret.ts credentialFromSecretData), named after its import's annotation.
func readSources(ctx context.Context, reader client.Reader, installNamespace string, hasImportLabel *labels.Requirement) (map[string]*source, error) {
	var list corev1.SecretList
	if err := reader.List(ctx, &list, client.InNamespace(installNamespace), client.MatchingLabelsSelector{Selector: labels.NewSelector().Add(*hasImportLabel)}); err != nil {
		return nil, fmt.Errorf("listing the registrations' Secrets in %s: %w", installNamespace, err)
	}
	sources := map[string]*source{}
	for _, s := range list.Items {
		name := s.Annotations[importLabel]
		if name == "" {
			name = s.Labels[importLabel]
		}
		token, server, caPem := string(s.Data["token"]), string(s.Data["server"]), string(s.Data["ca.crt"])
		if name == "" || token == "" || server == "" || caPem == "" {
			continue
		}
		cs, err := kubernetes.NewForConfig(&rest.Config{Host: server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: []byte(caPem)}, QPS: -1})
		if err != nil {
			return nil, fmt.Errorf("client for cluster %q: %w", name, err)
		}
		sources[name] = &source{server: server, caPem: caPem, client: cs}
	}
	return sources, nil
}

type reconciler struct {
	client           client.Client
	sources          map[string]*source
	plans            map[string]plan
	installNamespace string
	refreshRatio     float64
	// The status each import was last reported with (uid, generation, expiry), so a reconcile
	// that runs before the cache shows this process's own status patch does not write it again.
	reported sync.Map
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	imp := &unstructured.Unstructured{}
	imp.SetGroupVersionKind(importGVK)
	if err := r.client.Get(ctx, req.NamespacedName, imp); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if imp.GetNamespace() == r.installNamespace || imp.GetDeletionTimestamp() != nil {
		return ctrl.Result{}, nil
	}
	clusterName, _, _ := unstructured.NestedString(imp.Object, "spec", "clusterName")
	remoteNamespace, _, _ := unstructured.NestedString(imp.Object, "spec", "namespace")
	remoteName, _, _ := unstructured.NestedString(imp.Object, "spec", "name")
	p, planned := r.plans[planKey(clusterName, remoteNamespace, remoteName)]
	src := r.sources[clusterName]
	if !planned || src == nil {
		ctrl.LoggerFrom(ctx).Info("no plan or registration for this import; left alone", "cluster", clusterName)
		return ctrl.Result{}, nil
	}
	rotation := imp.GetAnnotations()[rotateAnnotation]
	secretName := secretNameForImport(imp.GetName())

	var secret corev1.Secret
	err := r.client.Get(ctx, types.NamespacedName{Namespace: imp.GetNamespace(), Name: secretName}, &secret)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	if err == nil {
		if issued, expiration, ok := current(&secret, imp, p.Fingerprint, rotation); ok {
			refreshAt := refreshTime(req.String(), issued, expiration, r.refreshRatio)
			if now := time.Now(); now.Before(refreshAt) {
				if err := r.reportReady(ctx, imp, clusterName, remoteNamespace, remoteName, secretName, expiration); err != nil {
					return ctrl.Result{}, err
				}
				return ctrl.Result{RequeueAfter: refreshAt.Sub(now)}, nil
			}
		}
	}

	// Mint: TokenRequest in the source, bound as the plan says.
	tr := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &p.ExpirationSeconds, Audiences: p.Audiences}}
	if p.BoundSecret != "" {
		tr.Spec.BoundObjectRef = &authv1.BoundObjectReference{APIVersion: "v1", Kind: "Secret", Name: p.BoundSecret, UID: types.UID(p.BoundSecretUID)}
	}
	got, err := src.client.CoreV1().ServiceAccounts(remoteNamespace).CreateToken(ctx, remoteName, tr, metav1.CreateOptions{})
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("TokenRequest for ServiceAccount %s/%s in cluster %q: %w", remoteNamespace, remoteName, clusterName, err)
	}
	tokensMinted.Inc()
	receivedAt := time.Now().Truncate(time.Millisecond) // the annotations keep milliseconds
	claims := readClaims(got.Status.Token)
	issued, expiration := localTokenTimes(receivedAt, claims.issuedAt, got.Status.ExpirationTimestamp.Time, p.ExpirationSeconds)

	apply := buildImportSecret(imp, secretName, src, remoteNamespace, got.Status.Token, issued, expiration, claims.serviceAccountUID, p.Fingerprint, rotation)
	if err := r.client.Apply(ctx, apply, client.FieldOwner(fieldManager), client.ForceOwnership); err != nil {
		return ctrl.Result{}, fmt.Errorf("writing Secret %s/%s: %w", imp.GetNamespace(), secretName, err)
	}
	if err := r.reportReady(ctx, imp, clusterName, remoteNamespace, remoteName, secretName, expiration); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: time.Until(refreshTime(req.String(), issued, expiration, r.refreshRatio))}, nil
}

// current says whether the Secret holds a token that needs no new one (src/controller/decide.ts
// decide, the checks before "refresh due"), and its times.
func current(s *corev1.Secret, imp *unstructured.Unstructured, fingerprint, rotation string) (time.Time, time.Time, bool) {
	owner := metav1.GetControllerOf(s)
	if owner == nil || owner.UID != imp.GetUID() || s.Labels[importLabel] != labelValueFor(imp.GetName()) || s.Annotations[importLabel] != imp.GetName() {
		return time.Time{}, time.Time{}, false
	}
	encoded := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		encoded[k] = base64.StdEncoding.EncodeToString(v)
	}
	a := s.Annotations
	issued, err1 := time.Parse(time.RFC3339Nano, a[annotationIssued])
	expiration, err2 := time.Parse(time.RFC3339Nano, a[annotationExpires])
	ok := a[annotationDataHash] == secretDataHash(encoded) && err1 == nil && err2 == nil &&
		a[annotationPrint] == fingerprint && a[annotationRotation] == rotation
	return issued, expiration, ok
}

// reportReady merge-patches the import's status as the controller does, unless it already says
// so (in the cache, or as this process last wrote it).
func (r *reconciler) reportReady(ctx context.Context, imp *unstructured.Unstructured, clusterName, remoteNamespace, remoteName, secretName string, expiration time.Time) error {
	generation := imp.GetGeneration()
	expires := expiration.UTC().Format(time.RFC3339)
	key := imp.GetNamespace() + "/" + imp.GetName()
	written := fmt.Sprintf("%s/%d/%s", imp.GetUID(), generation, expires)
	if last, ok := r.reported.Load(key); ok && last == written {
		return nil
	}
	message := fmt.Sprintf("token for ServiceAccount %s/%s in cluster %q is in Secret %s; it expires at %s and is refreshed before", remoteNamespace, remoteName, clusterName, secretName, expires)
	lastTransition := time.Now().UTC().Format(time.RFC3339)
	conditions, _, _ := unstructured.NestedSlice(imp.Object, "status", "conditions")
	others := []any{}
	for _, c := range conditions {
		m, _ := c.(map[string]any)
		if m["type"] != "Ready" {
			others = append(others, c)
			continue
		}
		if m["status"] == "True" {
			if t, ok := m["lastTransitionTime"].(string); ok {
				lastTransition = t
			}
			observed, _ := m["observedGeneration"].(int64)
			statusGeneration, _, _ := unstructured.NestedInt64(imp.Object, "status", "observedGeneration")
			statusExpires, _, _ := unstructured.NestedString(imp.Object, "status", "expirationTimestamp")
			if m["reason"] == "TokenIssued" && m["message"] == message && observed == generation && statusGeneration == generation && statusExpires == expires {
				r.markReported(key, written)
				return nil
			}
		}
	}
	ready := map[string]any{"type": "Ready", "status": "True", "reason": "TokenIssued", "message": message, "lastTransitionTime": lastTransition, "observedGeneration": generation}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"conditions":          append(others, ready),
		"observedGeneration":  generation,
		"secrets":             []any{map[string]any{"name": secretName}},
		"expirationTimestamp": expires,
	}})
	if err != nil {
		return err
	}
	if err := r.client.Status().Patch(ctx, imp, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("writing status of %s %s: %w", importKind, key, err)
	}
	r.markReported(key, written)
	return nil
}

func (r *reconciler) markReported(key, written string) {
	if _, seen := r.reported.Swap(key, written); !seen {
		readyImports.Inc()
	}
}

// buildImportSecret is src/secret.ts buildImportSecret as an apply configuration.
func buildImportSecret(imp *unstructured.Unstructured, secretName string, src *source, remoteNamespace, token string, issued, expiration time.Time, remoteUID, fingerprint, rotation string) *corev1ac.SecretApplyConfiguration {
	name := imp.GetName()
	config := buildKubeconfig(name, src.server, src.caPem, remoteNamespace, mountRoot+"/"+name+"/token")
	data := map[string][]byte{"token": []byte(token), "namespace": []byte(remoteNamespace), "server": []byte(src.server), "ca.crt": []byte(src.caPem), "config": []byte(config)}
	encoded := make(map[string]string, len(data))
	for k, v := range data {
		encoded[k] = base64.StdEncoding.EncodeToString(v)
	}
	return corev1ac.Secret(secretName, imp.GetNamespace()).
		WithType(corev1.SecretTypeOpaque).
		WithLabels(map[string]string{importLabel: labelValueFor(name)}).
		WithAnnotations(map[string]string{
			importLabel:         name,
			annotationIssued:    isoString(issued),
			annotationExpires:   isoString(expiration),
			annotationRemoteUID: remoteUID,
			annotationPrint:     fingerprint,
			annotationRotation:  rotation,
			annotationDataHash:  secretDataHash(encoded),
		}).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(group + "/" + version).WithKind(importKind).WithName(name).WithUID(imp.GetUID()).
			WithController(true).WithBlockOwnerDeletion(true)).
		WithData(data)
}

// buildKubeconfig is src/secret.ts buildKubeconfig with a token file: every value a JSON string.
func buildKubeconfig(name, server, caPem, namespace, tokenFile string) string {
	q := func(v string) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSuffix(b.String(), "\n")
	}
	return strings.Join([]string{
		"apiVersion: v1",
		"kind: Config",
		"clusters:",
		"  - name: " + q(name),
		"    cluster:",
		"      server: " + q(server),
		"      certificate-authority-data: " + q(base64.StdEncoding.EncodeToString([]byte(caPem))),
		"users:",
		"  - name: " + q(name),
		"    user:",
		"      tokenFile: " + q(tokenFile),
		"contexts:",
		"  - name: " + q(name),
		"    context:",
		"      cluster: " + q(name),
		"      user: " + q(name),
		"      namespace: " + q(namespace),
		"current-context: " + q(name),
		"preferences: {}",
		"",
	}, "\n")
}

// secretDataHash is src/secret.ts secretDataHash: sha256 of the sorted [key, base64 value] pairs as JSON.
func secretDataHash(encoded map[string]string) string {
	keys := make([]string, 0, len(encoded))
	for k := range encoded {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k, encoded[k]}
	}
	raw, _ := json.Marshal(pairs)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])[:32]
}

// isoString is JavaScript's Date.prototype.toISOString.
func isoString(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// refreshTime is src/controller/decide.ts refreshTime (no --max-refresh-interval).
func refreshTime(key string, issued, expiration time.Time, ratio float64) time.Time {
	sum := sha256.Sum256([]byte(key + "@" + isoString(issued)))
	jitter := (float64(binary.BigEndian.Uint16(sum[:2]))/0xffff - 0.5) / 10
	lifetime := float64(expiration.Sub(issued).Milliseconds())
	after := math.Max(float64(minRefreshAfter.Milliseconds()), lifetime*(ratio+jitter))
	return issued.Add(time.Duration(after) * time.Millisecond)
}

// localTokenTimes is src/controller/decide.ts localTokenTimes: the granted lifetime from the
// source's own iat and expiry, bounded by the requested one, on the local clock.
func localTokenTimes(receivedAt time.Time, sourceIssuedAt *time.Time, sourceExpiration time.Time, requestedSeconds int64) (time.Time, time.Time) {
	requested := time.Duration(requestedSeconds) * time.Second
	granted := requested
	if sourceIssuedAt != nil {
		granted = sourceExpiration.Sub(*sourceIssuedAt)
	}
	lifetime := requested
	if granted > 0 && granted < requested {
		lifetime = granted
	}
	return receivedAt, receivedAt.Add(lifetime)
}

type claims struct {
	issuedAt          *time.Time
	serviceAccountUID string
}

// readClaims reads iat and the ServiceAccount's UID from a token's payload (not verified: the
// source just issued it).
func readClaims(token string) claims {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claims{}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claims{}
	}
	var c struct {
		Iat        *int64 `json:"iat"`
		Kubernetes struct {
			ServiceAccount struct {
				UID string `json:"uid"`
			} `json:"serviceaccount"`
		} `json:"kubernetes.io"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return claims{}
	}
	out := claims{serviceAccountUID: c.Kubernetes.ServiceAccount.UID}
	if c.Iat != nil {
		t := time.Unix(*c.Iat, 0)
		out.issuedAt = &t
	}
	return out
}

// The safe alphabet and short hash of src/naming.ts.
const safeAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func shortHash(input string, length int) string {
	sum := sha256.Sum256([]byte(input))
	out := make([]byte, length)
	for i := range out {
		out[i] = safeAlphabet[int(sum[i])%len(safeAlphabet)]
	}
	return string(out)
}

// secretNameForImport is src/naming.ts secretNameForImport: <import>-token-<hash>, at most 253 characters.
func secretNameForImport(importName string) string {
	suffix := "-token-" + shortHash(importName, 5)
	prefix := importName
	if len(prefix) > 253-len(suffix) {
		prefix = prefix[:253-len(suffix)]
	}
	return strings.TrimRight(prefix, "-.") + suffix
}

// labelValueFor is src/naming.ts labelValueFor for names that are valid label values (≤ 63
// characters, as every bench import's is); longer names get the same hashed form.
func labelValueFor(name string) string {
	if len(name) <= 63 {
		return name
	}
	suffix := "-" + shortHash(name, 8)
	return strings.TrimRightFunc(name[:63-len(suffix)], func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) + suffix
}
