// One control plane per integration run: started before the first test file, stopped after the last.
import type { TestProject } from "vitest/node";
import { startControlPlane, type UserAuth } from "../controlplane/controlplane.ts";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    server: string;
    localControlPlane: boolean;
    userAuth: UserAuth;
    scratchDir: string;
  }
}

export default async function setup(project: TestProject) {
  const cp = await startControlPlane();
  project.provide("kubeconfig", cp.kubeconfig);
  project.provide("server", cp.server);
  project.provide("localControlPlane", cp.local);
  project.provide("userAuth", cp.userAuth);
  project.provide("scratchDir", cp.dir);
  return async () => {
    await cp.stop();
  };
}
