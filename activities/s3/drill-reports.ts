// Drill reports in the DR site's bucket, `drills/<site>/<cluster>/<startedAt>.{json,md}`: readable without the
// Temporal UI (any S3 client, drctl), and the history the next drill's trend is read from.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import type { ActivityDeps } from '../deps';
import { siteConfig } from '../deps';
import type { S3ArchiveConfig } from '../sites/sites-file';
import { s3ClientFor } from './backup-catalogue';
import { SiteUnreachableError } from '../../workflows/contracts/errors';
import { drillReportKeys, drillReportPrefix, renderDrillReport } from '../../workflows/contracts/drill-report';
import type { DrillReport } from '../../workflows/contracts/drills';

export const TREND_LENGTH = 10;

function unreachable(cfg: S3ArchiveConfig, what: string, err: unknown): never {
  const e = err as { name?: string; message?: string };
  throw new SiteUnreachableError(`${what} at ${cfg.endpoint ?? 'AWS S3'} bucket ${cfg.bucket}: ${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`);
}

/** Keys of the JSON reports of a cluster, newest first (the key carries the start time). */
export async function listDrillReportKeys(cfg: S3ArchiveConfig, cluster: string): Promise<string[]> {
  const s3 = s3ClientFor(cfg);
  const keys: string[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: cfg.bucket, Prefix: drillReportPrefix(cluster), ContinuationToken: token }));
      for (const o of page.Contents ?? []) if (o.Key?.endsWith('.json')) keys.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchBucket') return [];
    unreachable(cfg, `listing drill reports of ${cluster}`, err);
  }
  return keys.sort().reverse();
}

export async function readDrillReport(cfg: S3ArchiveConfig, key: string): Promise<DrillReport> {
  try {
    const obj = await s3ClientFor(cfg).send(new GetObjectCommand({ Bucket: cfg.bucket, Key: key }));
    return JSON.parse((await obj.Body?.transformToString()) ?? '') as DrillReport;
  } catch (err) {
    unreachable(cfg, `reading drill report ${key}`, err);
  }
}

/** The newest reports of a cluster, newest first. */
export async function listDrillReports(cfg: S3ArchiveConfig, cluster: string, limit = TREND_LENGTH): Promise<DrillReport[]> {
  const keys = await listDrillReportKeys(cfg, cluster);
  return Promise.all(keys.slice(0, limit).map((k) => readDrillReport(cfg, k)));
}

/**
 * Fills in the trend (the previous reports of the cluster, newest first, up to 10) and where the report is
 * stored, then writes the JSON and the Markdown. The keys come from the run's start time, so a retry overwrites
 * the same two objects and never counts itself in its own trend.
 */
export function createStoreDrillReport(deps: ActivityDeps) {
  return async function s3StoreDrillReport(input: { site: string; report: DrillReport }): Promise<DrillReport> {
    const cfg = siteConfig(deps, input.site).s3;
    const keys = drillReportKeys(input.report.cluster, input.report.startedAt);
    const earlier = (await listDrillReportKeys(cfg, input.report.cluster)).filter((k) => k !== keys.json && k < keys.json);
    const previous = await Promise.all(earlier.slice(0, TREND_LENGTH).map((k) => readDrillReport(cfg, k)));
    const report: DrillReport = {
      ...input.report,
      trend: previous.map((p) => ({ workflowId: p.workflowId, startedAt: p.startedAt, outcome: p.outcome, rtoMs: p.rtoMs, rpoBytes: p.rpo.bytes })),
      stored: { json: `s3://${cfg.bucket}/${keys.json}`, markdown: `s3://${cfg.bucket}/${keys.markdown}` },
    };
    const s3 = s3ClientFor(cfg);
    try {
      await s3.send(new PutObjectCommand({ Bucket: cfg.bucket, Key: keys.json, Body: JSON.stringify(report, null, 2) + '\n', ContentType: 'application/json' }));
      await s3.send(new PutObjectCommand({ Bucket: cfg.bucket, Key: keys.markdown, Body: renderDrillReport(report), ContentType: 'text/markdown' }));
    } catch (err) {
      unreachable(cfg, `writing drill report ${keys.json}`, err);
    }
    return report;
  };
}
