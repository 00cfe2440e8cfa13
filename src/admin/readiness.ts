/**
 * The one owner of "is this process ready?": /readyz answers from it and the `countersign_ready`
 * gauge reads it at every scrape, so the two never disagree. A process has exactly one: a
 * single-process server or a worker asks its runtime (policy loaded, every profile in use has
 * obtained credentials at least once); the `--workers` primary asks what its workers last reported.
 *
 * Ready is a start-up gate, not a health signal: once `check` has come back empty the process stays
 * ready until SIGTERM. Credentials that expire later, an STS outage or a reload that brings a
 * profile STS refuses show as 503s, `countersign_credentials_usable` 0,
 * `countersign_credentials_refusals_total` and the credential alerts; taking every pod out of its
 * Service for them would turn one profile's trouble into an outage of every endpoint.
 */
export class Readiness {
  private shuttingDown = false;
  private wasReady = false;

  /** `check`: why the process cannot serve yet, one line per reason; empty when it can. */
  constructor(private readonly check: () => readonly string[]) {}

  /** SIGTERM: from now on not ready, whatever `check` says (new streams are still served while draining). */
  shutDown(): void {
    this.shuttingDown = true;
  }

  /** Empty when ready; otherwise one line per reason, "shutting down" first. */
  notReadyReasons(): string[] {
    const reasons = this.wasReady ? [] : [...this.check()];
    if (reasons.length === 0) this.wasReady = true;
    return this.shuttingDown ? ["shutting down", ...reasons] : reasons;
  }

  isReady(): boolean {
    return this.notReadyReasons().length === 0;
  }
}
