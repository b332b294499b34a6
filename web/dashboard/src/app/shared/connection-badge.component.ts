import { ChangeDetectionStrategy, Component, computed, inject } from '@angular/core';
import { RealtimeService } from '../core/realtime.service';

const LABELS = { live: 'Live', connecting: 'Connecting…', reconnecting: 'Reconnecting…', offline: 'Offline' } as const;

/** Always-visible, honest connection state of the hub link. */
@Component({
  selector: 'app-connection-badge',
  changeDetection: ChangeDetectionStrategy.OnPush,
  template: `
    <span
      class="badge badge--{{ state() }}"
      data-testid="connection-badge"
      [attr.data-state]="state()"
      [attr.title]="title()"
      role="status"
      aria-live="polite"
    >
      <span class="badge__dot" aria-hidden="true"></span>{{ label() }}
    </span>
  `,
})
export class ConnectionBadgeComponent {
  private readonly rt = inject(RealtimeService);
  readonly state = this.rt.state;
  readonly label = computed(() => LABELS[this.state()]);
  readonly title = computed(() => {
    const t = this.rt.options.transport ?? 'auto';
    const err = this.rt.lastError();
    return `Transport: ${t}, protocol: ${this.rt.options.protocol}${err ? ` — last error: ${err}` : ''}`;
  });
}
