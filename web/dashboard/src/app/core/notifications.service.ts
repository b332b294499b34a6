import { Injectable, signal } from '@angular/core';
import { Severity } from './models';

export interface Toast {
  id: number;
  kind: 'alert' | 'export' | 'info' | 'error';
  severity: Severity;
  title: string;
  message: string;
  /** optional link (ExportCompleted download) */
  href: string | null;
  linkText: string | null;
}

/** How long a toast stays unless it links somewhere (those stay until dismissed). */
export const TOAST_MS = 8000;
const MAX_TOASTS = 5;

/** Transient notifications (toasts) shown in the corner of every page. */
@Injectable({ providedIn: 'root' })
export class NotificationsService {
  readonly toasts = signal<Toast[]>([]);
  private nextId = 1;
  private readonly timers = new Map<number, ReturnType<typeof setTimeout>>();

  show(t: Omit<Toast, 'id' | 'href' | 'linkText'> & Partial<Pick<Toast, 'href' | 'linkText'>>): number {
    const toast: Toast = { href: null, linkText: null, ...t, id: this.nextId++ };
    this.toasts.update((list) => {
      const next = [...list, toast];
      for (const dropped of next.slice(0, Math.max(0, next.length - MAX_TOASTS))) this.clearTimer(dropped.id);
      return next.slice(-MAX_TOASTS);
    });
    // A download link must not vanish before the user can click it.
    if (toast.href === null) this.timers.set(toast.id, setTimeout(() => this.dismiss(toast.id), TOAST_MS));
    return toast.id;
  }

  dismiss(id: number): void {
    this.clearTimer(id);
    this.toasts.update((list) => list.filter((t) => t.id !== id));
  }

  private clearTimer(id: number): void {
    const t = this.timers.get(id);
    if (t !== undefined) clearTimeout(t);
    this.timers.delete(id);
  }
}
