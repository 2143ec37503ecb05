// kube-apiserver is the real Kubernetes API server (k8s.io/kubernetes/cmd/kube-apiserver v1.34.4), built from
// the Go module proxy because no release binary can be downloaded here. The tests of the `zalando` site driver
// talk to it (with Debian's etcd as its storage) so that CRD validation, RBAC, ServiceAccount tokens,
// resourceVersion conflicts and subresources behave exactly as in a cluster; there is no kubelet, scheduler or
// controller-manager, and the Postgres operator is the project's stand-in. This file is a copy of
// cmd/kube-apiserver/apiserver.go; go.mod pins k8s.io/kubernetes v1.34.4 and replaces its 29 staging modules
// (which it requires as v0.0.0) with their published v0.34.4. scripts/bootstrap builds it into .tools/bin.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
