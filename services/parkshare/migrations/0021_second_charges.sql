-- A second charge for an intent already paid (the driver paid twice, or the provider charged
-- twice) is money received: it is booked as owed back, with its own outcome; so is a payment
-- for a stay paid meanwhile by other means ('overpaid') (issue 21).
alter table provider_callbacks drop constraint provider_callbacks_outcome_check;
alter table provider_callbacks add constraint provider_callbacks_outcome_check
    check (outcome in ('credited', 'duplicate', 'second_charge', 'overpaid', 'late', 'amount_mismatch', 'unknown_intent'));
-- A retried notification is recognised by its id.
create index provider_callbacks_notification on provider_callbacks (provider, notification_id);
