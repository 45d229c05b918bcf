# test/test.mk: the core's test suites (included by the top-level Makefile).
#   core, core-asan        test/test_core.c: unit tests of every public function
#   model, model-asan      test/test_model.c: randomized model test (model.h)
#   core-valgrind, model-valgrind   under valgrind (a short model run);
#                          skipped without it
#   core-threads           test_core.c built with TASK_THREADS (adds the wake
#                          callback case)
#   make check: check-model, check-model-asan   the model on 2,000 and 300
#                          more seeds (about 15 s and 5 s)
# Re-run a model seed alone: build/test_model STEPS SEED 1

TEST_CORE_DEPS  := task.h test/testlib.h
TEST_MODEL_DEPS := task.h test/testlib.h test/model.h
MODEL_ARGS      := 5000 1 20
MODEL_SAN_ARGS  := 3000 1 10
MODEL_VG_ARGS   := 400 1 3
CHECK_MODEL_ARGS     := 10000 1000 2000
CHECK_MODEL_SAN_ARGS := 5000 5000 300

$(BUILD)/test_core: test/test_core.c $(TEST_CORE_DEPS) | $(BUILD)
	$(CC) -std=c99 $(STRICT) -O2 -g -I. -o $@ test/test_core.c
$(BUILD)/test_core_asan: test/test_core.c $(TEST_CORE_DEPS) | $(BUILD)
	$(CC) -std=c99 $(STRICT) $(SAN) -I. -o $@ test/test_core.c
$(BUILD)/test_core_threads: test/test_core.c $(TEST_CORE_DEPS) | $(BUILD)
	$(CC) -std=c99 $(STRICT) -O2 -g -pthread -DTASK_THREADS -I. -o $@ test/test_core.c
$(BUILD)/test_model: test/test_model.c $(TEST_MODEL_DEPS) | $(BUILD)
	$(CC) -std=c99 $(STRICT) -O2 -g -I. -o $@ test/test_model.c
$(BUILD)/test_model_asan: test/test_model.c $(TEST_MODEL_DEPS) | $(BUILD)
	$(CC) -std=c99 $(STRICT) $(SAN) -I. -o $@ test/test_model.c

.PHONY: suite-core suite-core-asan suite-core-threads suite-model suite-model-asan suite-core-valgrind \
        suite-model-valgrind check-model check-model-asan
TEST_SUITES += suite-core suite-core-asan suite-core-threads suite-model suite-model-asan \
               suite-core-valgrind suite-model-valgrind
suite-core: $(BUILD)/test_core
	@test/run-one core $(BUILD)/test_core
suite-core-asan: $(BUILD)/test_core_asan
	@test/run-one core-asan $(BUILD)/test_core_asan
suite-core-threads: $(BUILD)/test_core_threads
	@test/run-one core-threads $(BUILD)/test_core_threads
suite-model: $(BUILD)/test_model
	@test/run-one model $(BUILD)/test_model $(MODEL_ARGS)
suite-model-asan: $(BUILD)/test_model_asan
	@test/run-one model-asan $(BUILD)/test_model_asan $(MODEL_SAN_ARGS)

suite-core-valgrind: $(BUILD)/test_core
	@$(call or_skip,valgrind,core-valgrind) test/run-one core-valgrind $(VG) $(BUILD)/test_core
suite-model-valgrind: $(BUILD)/test_model
	@$(call or_skip,valgrind,model-valgrind) test/run-one model-valgrind $(VG) $(BUILD)/test_model $(MODEL_VG_ARGS)

# make check (defined in hardening.mk, included before this file): its
# check-suites rule expanded CHECK_SUITES when it was read, so the model
# runs are added to that rule directly as well.
CHECK_SUITES += check-model check-model-asan
check-suites: check-model check-model-asan
check-model: $(BUILD)/test_model
	@test/run-one check-model $(BUILD)/test_model $(CHECK_MODEL_ARGS)
check-model-asan: $(BUILD)/test_model_asan
	@test/run-one check-model-asan $(BUILD)/test_model_asan $(CHECK_MODEL_SAN_ARGS)
