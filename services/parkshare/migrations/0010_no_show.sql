-- A booking whose time ended without its car arriving is a no-show: it no longer holds its
-- space and can no longer be cancelled.
alter table bookings drop constraint bookings_status_check;
alter table bookings add constraint bookings_status_check
    check (status in ('booked', 'arrived', 'completed', 'cancelled', 'no_show'));
alter table booking_events drop constraint booking_events_kind_check;
alter table booking_events add constraint booking_events_kind_check
    check (kind in ('made', 'moved', 'arrived', 'completed', 'cancelled', 'overstay', 'no_show'));
