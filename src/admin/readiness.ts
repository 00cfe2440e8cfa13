/**
 * The one owner of "is this process ready?": /readyz answers from it and the `countersign_ready`
 * gauge reads it at every scrape, so the two never disagree. A process has exactly one: a
 * single-process server or a worker asks its runtime (policy loaded, every profile in use has
 * credentials); the `--workers` primary asks what its workers last reported.
 */
export class Readiness {
  private shuttingDown = false;

  /** `check`: why the process cannot serve yet, one line per reason; empty when it can. */
  constructor(private readonly check: () => readonly string[]) {}

  /** SIGTERM: from now on not ready, whatever `check` says (new streams are still served while draining). */
  shutDown(): void {
    this.shuttingDown = true;
  }

  /** Empty when ready; otherwise one line per reason, "shutting down" first. */
  notReadyReasons(): string[] {
    const reasons = [...this.check()];
    return this.shuttingDown ? ["shutting down", ...reasons] : reasons;
  }

  isReady(): boolean {
    return this.notReadyReasons().length === 0;
  }
}
