import { ChangeDetectionStrategy, Component, inject } from '@angular/core';
import { DownloadService } from '../core/download.service';
import { NotificationsService } from '../core/notifications.service';

@Component({
  selector: 'app-toasts',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <div class="toasts" aria-live="polite">
      @for (t of toasts(); track t.id) {
        <div class="toast toast--{{ t.severity }}" data-testid="toast" [attr.data-kind]="t.kind">
          <div class="toast__body">
            <strong class="toast__title">{{ t.title }}</strong>
            <span class="toast__msg">{{ t.message }}</span>
            @if (t.href) {
              <a class="toast__link" [href]="t.href" (click)="open($event, t.href)" data-testid="toast-download">{{ t.linkText ?? 'Open' }}</a>
            }
          </div>
          <button type="button" class="toast__close" (click)="dismiss(t.id)" aria-label="Dismiss">×</button>
        </div>
      }
    </div>
  `,
})
export class ToastsComponent {
  private readonly n = inject(NotificationsService);
  readonly toasts = this.n.toasts;
  private readonly dl = inject(DownloadService);

  dismiss(id: number): void {
    this.n.dismiss(id);
  }

  /** Export links need the bearer token too: fetch them instead of navigating. */
  open(ev: Event, href: string): void {
    ev.preventDefault();
    this.dl.download(href).catch(() =>
      this.n.show({ kind: 'error', severity: 'warning', title: 'Download failed', message: 'The link may have expired; open Exports for a fresh one.' }),
    );
  }
}
