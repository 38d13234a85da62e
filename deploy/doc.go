// Package deploy holds the deployment kit of fn serve on several replicas (Kubernetes
// manifests, a docker-compose file with nginx, the container image) and the test that checks
// them; it has no code of its own.
package deploy
