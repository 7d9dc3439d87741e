# Build-time generation of kiln's man page and shell completions from its command table:
# cmake -DKILN=<kiln binary> -DARGS="help;--man" -DOUT=<file> -P kiln-gendoc.cmake
execute_process(COMMAND ${KILN} ${ARGS} OUTPUT_FILE "${OUT}.tmp" RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  file(REMOVE "${OUT}.tmp")
  message(FATAL_ERROR "kiln ${ARGS} failed (${rc}): ${err}")
endif()
file(RENAME "${OUT}.tmp" "${OUT}")
