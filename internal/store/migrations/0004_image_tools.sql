-- The devbox tools an image holds (image.DetectTools), comma-separated;
-- NULL for an image recorded before banger looked.
ALTER TABLE images ADD COLUMN tools TEXT;
