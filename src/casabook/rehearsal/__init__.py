"""Rehearsing the crowd: simulated attendees walk the real launch path against a hub and report
time-to-notebook, admissions against the cap, and what each attendee costs the machine."""
