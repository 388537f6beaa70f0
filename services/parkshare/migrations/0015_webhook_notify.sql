-- A queued webhook wakes the delivery worker of every process when its transaction commits
-- (a notification goes out at commit, never for a rolled-back transaction), wherever it was
-- queued: a booking, a gate read on a shared space, an overstay, a payment's payout. The
-- workers' idle poll stays as the safety net for a missed notification and for retries.
create function notify_webhooks() returns trigger language plpgsql as $$
begin
    perform pg_notify('parkshare_webhooks', '');
    return null;
end
$$;

create trigger webhook_deliveries_queued after insert on webhook_deliveries
    for each statement execute function notify_webhooks();
