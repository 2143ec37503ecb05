// Who the sandbox's demos play: carol starts a run, alice approves it, and bob approves too where a gate takes two
// people (accepting data loss or an unconfirmed fence); the requester is never one of the approvers (four-eyes).
import { sandboxTokenSource, type TokenSource } from '../identity/gate-decision';
import type { SandboxLayout } from './layout';
import { sandboxUsersFile } from './oidc-issuer';

export const DEMO_REQUESTER = 'carol';
export const DEMO_APPROVERS = ['alice', 'bob'];

/** ID tokens of the sandbox issuer's users (the passwords of its users file). */
export const demoTokens = (layout: SandboxLayout): TokenSource => sandboxTokenSource(sandboxUsersFile(layout));
