import { provideHttpClient } from '@angular/common/http';
import { provideHttpClientTesting } from '@angular/common/http/testing';
import { TestBed } from '@angular/core/testing';
import { RealtimeService } from '../core/realtime.service';
import { ConnectionBadgeComponent } from './connection-badge.component';

describe('ConnectionBadgeComponent', () => {
  afterEach(() => TestBed.resetTestingModule());

  it('shows the connection state as text and as a data-state attribute', async () => {
    TestBed.configureTestingModule({ imports: [ConnectionBadgeComponent], providers: [provideHttpClient(), provideHttpClientTesting()] });
    const fixture = TestBed.createComponent(ConnectionBadgeComponent);
    const rt = TestBed.inject(RealtimeService);
    const badge = () => fixture.nativeElement.querySelector('[data-testid="connection-badge"]') as HTMLElement;
    await fixture.whenStable();
    expect(badge().getAttribute('data-state')).toBe('offline');
    expect(badge().textContent?.trim()).toBe('Offline');
    for (const [state, label] of [
      ['live', 'Live'],
      ['reconnecting', 'Reconnecting…'],
    ] as const) {
      rt.state.set(state);
      await fixture.whenStable();
      expect(badge().getAttribute('data-state')).toBe(state);
      expect(badge().textContent?.trim()).toBe(label);
    }
  });
});
