import { ChangeDetectionStrategy, Component, input } from '@angular/core';

/** One KPI: label, big value, optional hint line. */
@Component({
  selector: 'app-kpi-tile',
  changeDetection: ChangeDetectionStrategy.OnPush,
  host: { class: 'kpi', '[attr.data-testid]': "'kpi-' + id()" },
  template: `
    <span class="kpi__label">{{ label() }}</span>
    <span class="kpi__value" data-testid="kpi-value">{{ value() }}</span>
    @if (hint()) {
      <span class="kpi__hint">{{ hint() }}</span>
    }
  `,
})
export class KpiTileComponent {
  readonly id = input.required<string>();
  readonly label = input.required<string>();
  readonly value = input.required<string>();
  readonly hint = input<string | null>(null);
}
