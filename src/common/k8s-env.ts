// Whether tabby-node talks to a Kubernetes API server at all — its own module, so the agent can decide
// without loading the API client (k8s-api.ts, node:http/https) when there is none (a host install, the lab).

/** In a Kubernetes cluster (service account) or pointed at an API server (K8S_API_ENDPOINT). */
export const k8sConfigured = (env: NodeJS.ProcessEnv): boolean =>
  !!env.K8S_API_ENDPOINT || (!!env.KUBERNETES_SERVICE_HOST && !!env.KUBERNETES_SERVICE_PORT);
