import type * as grpc from "@grpc/grpc-js";
import type { TlsMaterial } from "./tlsMaterial.js";

type Provider = grpc.experimental.CertificateProvider;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;
type CaListener = grpc.experimental.CaCertificateUpdateListener;

/**
 * grpc-js's certificate-provider interface over material countersign has already checked: the
 * listener's server credentials (`experimental.createCertificateProviderServerCredentials`) take
 * their certificate, key and client CA from here and apply every `swap` to the listener's TLS
 * context, so new connections get the new certificate while open ones keep theirs.
 *
 * grpc-js's own FileWatcherCertificateProvider is not used: it only polls, has no settle or
 * missing-newline rule, checks nothing before use, and withdraws the certificate when a file cannot
 * be read (the listener then drops every new connection) instead of keeping the last good one.
 */
export class SwappableCertificateProvider implements Provider {
  private material: TlsMaterial;
  private readonly identityListeners = new Set<IdentityListener>();
  private readonly caListeners = new Set<CaListener>();

  constructor(material: TlsMaterial) {
    this.material = material;
  }

  current(): TlsMaterial {
    return this.material;
  }

  /** Hands `material` to every listener at once (certificate and key, then the client CA). */
  swap(material: TlsMaterial): void {
    this.material = material;
    for (const listener of this.identityListeners) listener(this.identityUpdate());
    for (const listener of this.caListeners) listener(this.caUpdate());
  }

  // grpc-js registers its secure-context watcher only after adding these listeners: the current
  // material must arrive on a later tick, as grpc-js's own providers deliver it, or it is lost.
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    process.nextTick(() => this.identityListeners.has(listener) && listener(this.identityUpdate()));
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    process.nextTick(() => this.caListeners.has(listener) && listener(this.caUpdate()));
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }

  private identityUpdate(): grpc.experimental.IdentityCertificateUpdate {
    return { certificate: this.material.cert, privateKey: this.material.key };
  }

  private caUpdate(): grpc.experimental.CaCertificateUpdate | null {
    return this.material.clientCa ? { caCertificate: this.material.clientCa } : null;
  }
}
