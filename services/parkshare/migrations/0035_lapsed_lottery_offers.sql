-- An offer accepted with a car names the rental it became (issue 26, tester's F1). When that
-- rental's hold runs out unpaid, the offer lapses (`lapsed_at`, set in the statement that
-- expires the rental) and passes to the next applicant, as an offer left unanswered does.
alter table lottery_offers add column rental_id uuid references rentals (id);
alter table lottery_offers add column lapsed_at timestamptz;
alter table lottery_offers add constraint lottery_offers_lapse_of_accepted
    check (lapsed_at is null or (answer = 'accepted' and rental_id is not null));
create index lottery_offers_rental on lottery_offers (rental_id) where rental_id is not null;
