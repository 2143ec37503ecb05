// Failback through the Zalando operator: a former primary comes back as a standby of the promoted cluster.
// (Being built: every operation refuses before changing anything until it is.)
import type {
  DemoteRequest, DemoteResult, FormerPrimaryAssessment, QuarantineRequest, QuarantineResult, ReseedRequest, ReseedResult,
} from '../site-driver';
import { PreconditionFailedError } from '../../../workflows/contracts/errors';
import type { ZalandoSiteDriver } from '../zalando-driver';

function notBuilt(d: ZalandoSiteDriver, what: string): never {
  throw new PreconditionFailedError(`${what} is not built for zalando sites yet (issue 6): fail back ${d.site} clusters by hand for now`);
}

export async function demoteToStandby(d: ZalandoSiteDriver, _cluster: string, _req: DemoteRequest): Promise<DemoteResult> {
  return notBuilt(d, 'demoting a former primary into a standby');
}

export async function assessFormerPrimary(d: ZalandoSiteDriver, _cluster: string): Promise<FormerPrimaryAssessment> {
  return notBuilt(d, 'assessing a former primary');
}

export async function quarantineWal(d: ZalandoSiteDriver, _cluster: string, _req: QuarantineRequest): Promise<QuarantineResult> {
  return notBuilt(d, 'quarantining divergent WAL');
}

export async function reseedAsStandby(d: ZalandoSiteDriver, _cluster: string, _req: ReseedRequest, _onProgress?: (detail: string) => void): Promise<ReseedResult> {
  return notBuilt(d, 'reseeding a former primary');
}
